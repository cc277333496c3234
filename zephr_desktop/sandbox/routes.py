"""Routes of the sandbox: one Request in, one Response out (None means drop the connection)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from . import pages
from .model import SCOPES, TEST_USERS, Client, SandboxSettings
from .protocol import (
    AuthParams,
    OAuthError,
    RedirectError,
    UntrustedRequestError,
    random_alnum,
    single_values,
    validate_authorization,
)
from .state import SandboxState

MAX_BODY = 1024 * 1024
SESSION_COOKIE = "blaize_session"
AUTHORIZE_PATH = "/zephr/oauth2"
CONSENT_PAGE_PATH = "/zephr/oauth2/authorize-consent"
LOGIN_PATH = "/zephr/login"
TOKEN_PATH = "/zephr/oauth2/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
_GRANT_KEYS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
_WRONG_PASSWORD = "That email address and password don't match a test user. Try again."


@dataclass(frozen=True)
class Request:
    """What a route needs from an HTTP request (header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""
    session: str | None = None

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case ('' when absent)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class Response:
    """A complete HTTP answer."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())


class Abort(Exception):
    """Stop a route early with this response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, value: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON answer that is never cached."""
    body = json.dumps(value).encode("utf-8")
    return Response(status, body, JSON_TYPE, _NO_STORE + headers)


def html_response(status: int, page: Callable[[str], str], headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """An HTML answer; page gets the CSP nonce its inline script must carry."""
    nonce = secrets.token_urlsafe(16)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    security = (
        ("Content-Security-Policy", csp),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        # The consent URL carries state and the challenge; the redirect carries the code.
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    )
    return Response(status, page(nonce).encode("utf-8"), "text/html; charset=utf-8", security + headers)


def redirect(location: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A 302 to location."""
    return Response(302, b"", None, (("Location", location), ("Cache-Control", "no-store"), *headers))


def with_params(uri: str, params: Mapping[str, str | None]) -> str:
    """uri with params added to its query (None values left out)."""
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{extra}"


def safe_next(value: str, host: str, scheme: str) -> str | None:
    """A same-origin path to go to after sign-in, or None (no open redirects)."""
    if not value or any(c in value for c in "\\\r\n\t"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if parts.scheme != scheme or not host or parts.netloc.lower() != host.lower():
            return None
        return urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if not value.startswith("/") or value.startswith("//"):
        return None
    return value


def _user_label(email: str) -> str:
    """'Joe Blow (joe@example.com)'."""
    user = TEST_USERS[email]
    return f"{user['first_name']} {user['surname']} ({email})"


def _field(body: Mapping[str, Any], key: str) -> str | None:
    """A string parameter of a token request body, or None; other JSON types are refused."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OAuthError("invalid_request", f"{key} must be a string.")
    return value


def parse_token_body(media: str, raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The token request's parameters, and what is wrong with the body (None if fine)."""
    if media == JSON_TYPE:
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {}, "The body is not valid JSON."
        if not isinstance(value, dict):
            return {}, "The body must be a JSON object."
        return value, None
    if media == FORM_TYPE:
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return {}, "The form body is not UTF-8."
        values, duplicates = single_values(form)
        problem = f"Repeated parameter: {', '.join(sorted(duplicates))}." if duplicates else None
        return dict(values), problem
    return {}, None


def _decode_basic(credentials: str) -> tuple[str, str]:
    """The raw id and secret of a Basic credential, split at the first ':' (no url-decoding)."""
    try:
        text = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "The Basic credentials are not valid base64.", 401) from None
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise OAuthError("invalid_client", "The Basic credentials have no ':' between ID and secret.", 401)
    return client_id, secret


def _form_decode(part: str) -> str:
    """One application/x-www-form-urlencoded value, decoded strictly: '+' is a space, '%' starts an escape."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", part):
        raise OAuthError("invalid_request", _NOT_ENCODED)
    try:
        return unquote_plus(part, errors="strict")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", _NOT_ENCODED) from None


_NOT_ENCODED = (
    "client_id and client_secret in the Authorization header are not properly encoded: form-urlencode each "
    "before base64 (RFC 6749 2.3.1)."
)


def _secret_matches(client: Client | None, secret: str) -> bool:
    """Constant-time check of a client secret."""
    if client is None or client.client_secret is None:
        return False
    return hmac.compare_digest(client.client_secret.encode("utf-8"), secret.encode("utf-8"))


def token_error(error: OAuthError) -> Response:
    """An RFC 6749 5.2 error answer; 401s name the Basic scheme."""
    headers = (("WWW-Authenticate", 'Basic realm="zephr"'),) if error.status == 401 else ()
    return json_response(error.status, {"error": error.error, "error_description": error.description}, headers)


def fault_response(fault: str, settings: SandboxSettings, state: SandboxState) -> Response | None:
    """The token endpoint's answer under an injected fault (None: drop the connection).

    The made-up tokens and MAC key are noted in state's known secrets, like real ones.
    """
    fake: dict[str, Any] = {
        "scope": "user.account:read, user.profile:read",
        "access_token": "oa_" + random_alnum(),
        "token_type": "bearer",
        "expires_in": settings.expires_in,
        "refresh_token": random_alnum(),
        "user_id": TEST_USERS["joe@example.com"]["user_id"],
    }
    state.note_secret("access_token", fake["access_token"])
    state.note_secret("refresh_token", fake["refresh_token"])
    if fault == "invalid_grant":
        description = "The code or refresh token is invalid (sandbox fault)."
        return json_response(400, {"error": "invalid_grant", "error_description": description})
    if fault == "400_empty":
        return Response(400)
    if fault == "invalid_client":
        return token_error(OAuthError("invalid_client", "Client authentication failed (sandbox fault).", 401))
    if fault == "401_html":
        return html_response(401, lambda _: pages.simple_html("401 Authorization Required", "Zephr"))
    if fault == "500":
        return Response(500, b"Internal Server Error", "text/plain; charset=utf-8")
    if fault == "502_html":
        return html_response(502, lambda _: pages.simple_html("502 Bad Gateway", "nginx"))
    if fault == "200_non_json":
        return html_response(200, lambda _: pages.simple_html("Zephr", "Please sign in to continue."))
    if fault == "200_no_access_token":
        return json_response(200, {k: v for k, v in fake.items() if k != "access_token"})
    if fault == "token_type_mac":
        mac = {"token_type": "mac", "mac_key": random_alnum(), "mac_algorithm": "hmac-sha-256"}
        state.note_secret("mac_key", mac["mac_key"])
        return json_response(200, fake | mac)
    if fault == "huge_body":
        return json_response(200, fake | {"padding": "x" * (MAX_BODY + 64 * 1024)})
    return None  # "drop"


class SandboxApp:
    """Zephr's OAuth 2.0 server and Public API, as routes over SandboxState."""

    def __init__(
        self,
        state: SandboxState,
        settings: Callable[[], SandboxSettings],
        base_url: str,
    ) -> None:
        self.state = state
        self.settings = settings
        self.base_url = base_url
        self.scheme = urlsplit(base_url).scheme
        self._routes: dict[str, dict[str, Callable[[Request], Response | None]]] = {
            AUTHORIZE_PATH: {"GET": self.authorize},
            CONSENT_PAGE_PATH: {"GET": self.consent_page},
            LOGIN_PATH: {"GET": self.login_form, "POST": self.login},
            pages.POPUP_PATH: {"GET": self.popup_form, "POST": self.popup_login},
            "/zephr/logout": {"POST": self.logout},
            "/zephr/oauth2/grant": {"POST": self.grant},
            "/zephr/oauth2/config": {"GET": self.config},
            "/zephr/oauth2/logo.svg": {"GET": self.logo},
            "/zephr/oauth2/error": {"GET": self.error_page},
            "/zephr/oauth2/token": {"POST": self.token},
            "/blaize/account": {"GET": self.account},
            "/blaize/profile": {"GET": self.get_profile, "PUT": self.put_profile, "PATCH": self.patch_profile},
            METADATA_PATH: {"GET": self.metadata},
        }

    def handle(self, request: Request) -> Response | None:
        """Route a request; unknown paths get 404, known ones with another method 405."""
        if request.path == "/zephr/oauth2/consent" or request.path.startswith("/zephr/oauth2/consent/"):
            methods: dict[str, Callable[[Request], Response | None]] = {"GET": self.consent_api}
        else:
            methods = self._routes.get(request.path, {})
        if not methods:
            return json_response(404, {"error": "not_found", "error_description": f"No route for {request.path}."})
        route = methods.get(request.method)
        if route is None:
            allow = ", ".join(methods)
            return json_response(405, {"error": "method_not_allowed"}, (("Allow", allow),))
        try:
            return route(request)
        except Abort as abort:
            return abort.response

    # --- helpers -----------------------------------------------------------------------
    def _signed_in(self, request: Request) -> str | None:
        """The email of the session's user, if signed in."""
        return self.state.session_user(request.session)

    def _validate(self, values: Mapping[str, str], duplicates: set[str]) -> AuthParams:
        """validate_authorization with this sandbox's clients and settings."""
        return validate_authorization(values, duplicates, self.state.client, self.settings().loopback_any_port)

    def _error_html(self, status: int, error: str, description: str) -> Response:
        """The OAuth error page, used where a redirect cannot be trusted."""
        title = "Sign-in can't continue"
        return html_response(status, lambda nonce: pages.error_page(title, error, description, nonce))

    def _form(self, request: Request) -> dict[str, str]:
        """A form-encoded body (first value of each field)."""
        if request.media_type != FORM_TYPE:
            raise Abort(self._error_html(415, "invalid_request", "Send the form as application/x-www-form-urlencoded."))
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return single_values(form)[0]

    def _json_object(self, request: Request) -> dict[str, Any]:
        """A JSON object body, or Abort with 400/415."""
        if request.media_type != JSON_TYPE:
            raise Abort(json_response(415, {"error": "invalid_request", "error_description": "Send application/json."}))
        try:
            value = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            value = None
        if not isinstance(value, dict):
            raise Abort(json_response(400, {"error": "invalid_request", "error_description": "Send a JSON object."}))
        return value

    def _next(self, values: Mapping[str, str], request: Request) -> str | None:
        """The validated next parameter."""
        return safe_next(values.get("next", ""), request.headers.get("host", ""), self.scheme)

    def _login_redirect(self, next_url: str) -> Response:
        """Send the browser to the login page, coming back to next_url."""
        return redirect(f"{LOGIN_PATH}?{urlencode({'next': next_url})}")

    # --- authorization ---------------------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        """GET /zephr/oauth2: validate, then on to login or consent."""
        self.state.count("authorize")
        values, duplicates = single_values(request.query)
        try:
            params = self._validate(values, duplicates)
        except UntrustedRequestError as exc:
            return self._error_html(400, "invalid_request", exc.description)
        except RedirectError as exc:
            return redirect(_error_redirect(exc))
        query = urlencode(params.as_dict())
        if self._signed_in(request) is None:
            return self._login_redirect(f"{AUTHORIZE_PATH}?{query}")
        return redirect(f"{CONSENT_PAGE_PATH}?{query}")

    def consent_page(self, request: Request) -> Response:
        """The Allow/Deny page for a valid request and a signed-in user."""
        values, duplicates = single_values(request.query)
        try:
            params = self._validate(values, duplicates)
        except UntrustedRequestError as exc:
            return self._error_html(400, "invalid_request", exc.description)
        except RedirectError as exc:
            return redirect(_error_redirect(exc))
        here = f"{CONSENT_PAGE_PATH}?{urlencode(params.as_dict())}"
        email = self._signed_in(request)
        if email is None:
            return self._login_redirect(here)
        client = self.state.client(params.client_id)
        name = client.name if client else params.client_id
        granted = self.state.consent(email, params.client_id)
        return html_response(
            200,
            lambda nonce: pages.consent_page(
                name, params.scopes, _user_label(email), params.as_dict(), here, nonce, granted
            ),
        )

    def login_form(self, request: Request) -> Response:
        """GET /zephr/login."""
        next_url = self._next(single_values(request.query)[0], request)
        return html_response(200, lambda nonce: pages.login_page(next_url or "", TEST_USERS, nonce))

    def login(self, request: Request) -> Response:
        """POST /zephr/login: check the password, set the session cookie, go to next."""
        form = self._form(request)
        email = form.get("email", "").strip()
        # The form's hidden field, else the query string the login page was posted to.
        next_url = self._next(form, request) or self._next(single_values(request.query)[0], request)
        session = self.state.sign_in(email, form.get("password", ""))
        if session is None:
            return html_response(
                401, lambda nonce: pages.login_page(next_url or "", TEST_USERS, nonce, _WRONG_PASSWORD, email)
            )
        cookie = self._session_cookie(session)
        if next_url:
            return redirect(next_url, cookie)
        label = _user_label(email.lower())
        return html_response(200, lambda nonce: pages.signed_in_page(label, nonce), cookie)

    def _session_cookie(self, session: str) -> tuple[tuple[str, str]]:
        secure = "; Secure" if self.scheme == "https" else ""
        return (("Set-Cookie", f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax{secure}"),)

    def popup_form(self, request: Request) -> Response:
        """GET /zephr/popup-id: the Popup ID sign-in the login page opens in a popup."""
        return html_response(200, lambda nonce: pages.popup_login_page(TEST_USERS, nonce))

    def popup_login(self, request: Request) -> Response:
        """POST /zephr/popup-id: sign in (the session cookie is the opener's too); the page tells the opener."""
        form = self._form(request)
        email = form.get("email", "").strip()
        session = self.state.sign_in(email, form.get("password", ""))
        if session is None:
            return html_response(401, lambda nonce: pages.popup_login_page(TEST_USERS, nonce, _WRONG_PASSWORD, email))
        label = _user_label(email.lower())
        return html_response(200, lambda nonce: pages.popup_done_page(label, nonce), self._session_cookie(session))

    def logout(self, request: Request) -> Response:
        """POST /zephr/logout: end the session, back to the login page."""
        form = self._form(request)
        self.state.sign_out(request.session)
        next_url = self._next(form, request) or ""
        expired = (("Set-Cookie", f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),)
        return redirect(f"{LOGIN_PATH}?{urlencode({'next': next_url})}", expired)

    def grant(self, request: Request) -> Response:
        """POST /zephr/oauth2/grant: the consent page's Allow/Deny."""
        self.state.count("grant")
        email = self._signed_in(request)
        if email is None:
            return json_response(401, {"error": "unauthorized"})
        data = self._json_object(request)
        values: dict[str, str] = {}
        for key in _GRANT_KEYS:
            if data.get(key) is None:
                continue
            if not isinstance(data[key], str):
                return json_response(400, {"error": "invalid_request", "error_description": f"{key} must be a string."})
            values[key] = data[key]
        try:
            params = self._validate(values, set())
        except UntrustedRequestError as exc:
            return json_response(400, {"error": "invalid_request", "error_description": exc.description})
        except RedirectError as exc:
            return json_response(400, {"state": exc.state, "error": exc.error, "error_description": exc.description})
        allow = data.get("allow")
        if not isinstance(allow, bool):
            problem = {
                "state": params.state,
                "error": "invalid_request",
                "error_description": "allow must be a boolean.",
            }
            return json_response(400, problem)
        settings = self.settings()
        if not allow or settings.auto_deny:
            return json_response(401, {"state": params.state, "error": "access_denied"})
        code = self.state.issue_code(params, email, settings.code_lifetime)
        return json_response(200, {"state": params.state, "code": code})

    def consent_api(self, request: Request) -> Response:
        """GET /zephr/oauth2/consent/{clientId}: scopes this user granted that client."""
        client_id = unquote(request.path.removeprefix("/zephr/oauth2/consent").strip("/"))
        if not client_id:
            return json_response(400, {"error": "invalid_request", "error_description": "clientId is required."})
        email = self._signed_in(request)
        if email is None:
            return json_response(401, {"error": "unauthorized"})
        return json_response(200, {"consent": self.state.consent(email, client_id)})

    def config(self, request: Request) -> Response:
        """GET /zephr/oauth2/config: the public page customisation."""
        return json_response(
            200,
            {
                "logo_url": f"{self.base_url}/zephr/oauth2/logo.svg",
                "title": pages.TITLE,
                "login_title": "Sign in",
                "consent_title": "Allow access",
                "identifier_placeholder": pages.IDENTIFIER_PLACEHOLDER,
                "background_colour": pages.BACKGROUND,
            },
        )

    def logo(self, request: Request) -> Response:
        """The logo named by the config."""
        return Response(200, pages.LOGO_SVG.encode("utf-8"), "image/svg+xml", (("Cache-Control", "max-age=3600"),))

    def error_page(self, request: Request) -> Response:
        """GET /zephr/oauth2/error?error=..&error_description=.."""
        values = single_values(request.query)[0]
        error, description = values.get("error", ""), values.get("error_description", "")
        return html_response(
            200,
            lambda nonce: pages.error_page("Sign-in failed", error, description or "Something went wrong.", nonce),
        )

    def metadata(self, request: Request) -> Response:
        """GET /.well-known/oauth-authorization-server: RFC 8414 metadata, in RFC mode only (Zephr has none)."""
        if self.settings().mode != "rfc":
            return json_response(404, {"error": "not_found", "error_description": f"No route for {request.path}."})
        return json_response(
            200,
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}{AUTHORIZE_PATH}",
                "token_endpoint": f"{self.base_url}{TOKEN_PATH}",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": list(SCOPES),
            },
        )

    # --- token endpoint ----------------------------------------------------------------------
    def token(self, request: Request) -> Response | None:
        """POST /zephr/oauth2/token (RFC 6749 4.1.3 and 6, Zephr's JSON flavour)."""
        settings = self.settings()
        body, problem = parse_token_body(request.media_type, request.body)
        for key in ("client_secret", "code", "code_verifier", "refresh_token"):
            self.state.note_secret(key, body.get(key))
        self.state.record_token_request(_shape(request, body))
        if settings.delay:
            time.sleep(settings.delay)
        if settings.fault:
            self.state.count("token_errors")
            return fault_response(settings.fault, settings, self.state)
        try:
            if problem:
                raise OAuthError("invalid_request", problem)
            _check_media(request.media_type, settings.mode)
            client = self._authenticate(request, body, settings.mode)
            answer = self._grant_tokens(client, body, settings)
        except OAuthError as exc:
            self.state.count("token_errors")
            return token_error(exc)
        return json_response(200, answer)

    def _authenticate(self, request: Request, body: Mapping[str, Any], mode: str) -> Client:
        """The client, by Basic credentials or (public client) client_id; RFC mode adds client_secret_post."""
        query, duplicates = single_values(request.query)
        if duplicates:
            raise OAuthError("invalid_request", f"Repeated parameter: {', '.join(sorted(duplicates))}.")
        if "client_secret" in query:
            raise OAuthError("invalid_request", "client_secret must never be sent in the URL.")
        body_id, query_id = _field(body, "client_id"), query.get("client_id")
        if body_id and query_id and body_id != query_id:
            raise OAuthError("invalid_request", "client_id differs between the URL and the body.")
        named = body_id or query_id
        body_secret = _field(body, "client_secret")
        header = request.headers.get("authorization")
        if header is not None:
            client = self._basic_client(header, body_secret, mode)
            if named and named != client.client_id:
                raise OAuthError("invalid_request", "client_id does not match the Basic credentials.")
            return client
        if not named:
            raise OAuthError(
                "invalid_client",
                "Client authentication is required: send Authorization: Basic base64(client_id:client_secret).",
                401,
            )
        known = self.state.client(named)
        if known is None:
            raise OAuthError("invalid_client", "Unknown client_id.", 401)
        if known.client_secret is None and not body_secret:
            return known
        if mode == "rfc" and body_secret is not None and _secret_matches(known, body_secret):
            return known
        raise OAuthError(
            "invalid_client",
            "This client has a secret: authenticate with Authorization: Basic base64(client_id:client_secret).",
            401,
        )

    def _basic_client(self, header: str, body_secret: str | None, mode: str) -> Client:
        """The client named by a Basic header whose secret matches."""
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "Only Basic client authentication is supported.", 401)
        if body_secret is not None:
            raise OAuthError("invalid_request", "Use one client authentication method, not Basic and client_secret.")
        client_id, secret = _decode_basic(credentials.strip())
        self.state.note_secret("client_secret", secret)
        if mode == "rfc":
            # RFC 6749 2.3.1: both parts are form-urlencoded first, and only that is accepted here,
            # as certified servers do: '+' reads as a space, a bare '%' is refused.
            client_id, secret = _form_decode(client_id), _form_decode(secret)
            self.state.note_secret("client_secret", secret)
        client = self.state.client(client_id)
        if client is not None and _secret_matches(client, secret):
            return client
        raise OAuthError("invalid_client", "The client ID or secret is wrong.", 401)

    def _grant_tokens(self, client: Client, body: Mapping[str, Any], settings: SandboxSettings) -> dict[str, Any]:
        """Run the grant named by grant_type for an authenticated client."""
        grant_type = _field(body, "grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type == "authorization_code":
            code, redirect_uri = _field(body, "code"), _field(body, "redirect_uri")
            missing = [k for k, v in (("code", code), ("redirect_uri", redirect_uri)) if not v]
            if missing or code is None or redirect_uri is None:
                raise OAuthError("invalid_request", f"Missing parameter: {', '.join(missing)}.")
            verifier = _field(body, "code_verifier")
            answer = self.state.redeem_code(client.client_id, code, redirect_uri, verifier, settings.expires_in)
            self.state.count("token_authorization_code")
            return answer
        if grant_type == "refresh_token":
            refresh_token = _field(body, "refresh_token")
            if not refresh_token:
                raise OAuthError("invalid_request", "Missing parameter: refresh_token.")
            answer = self.state.refresh(client.client_id, refresh_token, _field(body, "scope"), settings)
            self.state.count("token_refresh_token")
            return answer
        raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported.")

    # --- Public API ------------------------------------------------------------------------------
    def _api_user(self, request: Request, scope: str) -> str:
        """The email behind a live bearer token that carries scope, or Abort 401/403."""
        self.state.count("api")
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Abort(_invalid_token("Send the access token as Authorization: Bearer <token>."))
        try:
            grant = self.state.bearer(token.strip())
        except OAuthError as exc:
            raise Abort(_invalid_token(exc.description)) from None
        if scope not in grant.scopes:
            challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
            raise Abort(
                json_response(
                    403,
                    {"error": "insufficient_scope", "error_description": f"This call needs the {scope} scope."},
                    (("WWW-Authenticate", challenge),),
                )
            )
        return grant.email

    def account(self, request: Request) -> Response:
        """GET /blaize/account."""
        email = self._api_user(request, "user.account:read")
        user = TEST_USERS[email]
        return json_response(
            200, {"identifiers": {"email_address": email}, "tracking_id": user["tracking_id"], "email_verified": True}
        )

    def get_profile(self, request: Request) -> Response:
        """GET /blaize/profile."""
        email = self._api_user(request, "user.profile:read")
        return json_response(200, self.state.profile(email))

    def put_profile(self, request: Request) -> Response:
        """PUT /blaize/profile: replace the attributes."""
        return self._update_profile(request, replace=True)

    def patch_profile(self, request: Request) -> Response:
        """PATCH /blaize/profile: merge the attributes."""
        return self._update_profile(request, replace=False)

    def _update_profile(self, request: Request, replace: bool) -> Response:
        """Check the token and body, then store the profile."""
        email = self._api_user(request, "user.profile:update")
        data = self._json_object(request)
        nested = [k for k, v in data.items() if isinstance(v, (dict, list))]
        if nested:
            return json_response(
                400, {"error": "invalid_request", "error_description": f"Attributes must be flat: {', '.join(nested)}."}
            )
        return json_response(200, self.state.update_profile(email, data, replace))


def _invalid_token(description: str) -> Response:
    """RFC 6750 3.1 invalid_token."""
    return json_response(
        401,
        {"error": "invalid_token", "error_description": description},
        (("WWW-Authenticate", 'Bearer error="invalid_token"'),),
    )


def _error_redirect(exc: RedirectError) -> str:
    """The redirect URI carrying an RFC 6749 4.1.2.1 error."""
    return with_params(exc.redirect_uri, {"error": exc.error, "error_description": exc.description, "state": exc.state})


def _check_media(media: str, mode: str) -> None:
    """Zephr mode takes JSON only; RFC mode JSON or form-encoded."""
    if mode == "zephr" and media != JSON_TYPE:
        raise OAuthError(
            "invalid_request",
            f"The token endpoint takes a JSON body (Content-Type: application/json), not '{media or 'none'}'.",
        )
    if media not in (JSON_TYPE, FORM_TYPE):
        raise OAuthError(
            "invalid_request",
            "Send the token request as application/json or application/x-www-form-urlencoded.",
        )


def _shape(request: Request, body: Mapping[str, Any]) -> dict[str, Any]:
    """A token request's shape for token_requests: names, never values."""
    header = request.headers.get("authorization")
    auth = "none" if header is None else "basic" if header.strip().lower().startswith("basic ") else "other"
    grant_type = body.get("grant_type")
    return {
        "content_type": request.media_type,
        "authorization": auth,
        "keys": sorted(body),
        "grant_type": grant_type if isinstance(grant_type, str) else "",
        "query_keys": sorted(request.query),
    }
