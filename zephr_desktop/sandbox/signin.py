"""Sign-in and consent: the browser's side of the authorization code flow.

The authorize endpoint, the login form and Popup ID sign-in (sessions in the blaize_session
cookie), logout, the consent page and the grant call its Allow/Deny buttons make, the
consent lookup and the sign-in error page; requests that fail validation are answered with
an error page or an RFC 6749 4.1.2.1 error redirect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from . import pages
from .messages import (
    AUTHORIZE_PATH,
    CONSENT_PAGE_PATH,
    FORM_TYPE,
    LOGIN_PATH,
    SESSION_COOKIE,
    Abort,
    Request,
    Response,
    html_response,
    json_object,
    json_response,
    redirect,
)
from .model import TEST_USERS, SandboxSettings
from .protocol import AuthParams, RedirectError, UntrustedRequestError, single_values, validate_authorization
from .state import SandboxState

_GRANT_KEYS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
_WRONG_PASSWORD = "That email address and password don't match a test user. Try again."


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


def _error_redirect(exc: RedirectError) -> str:
    """The redirect URI carrying an RFC 6749 4.1.2.1 error."""
    return with_params(exc.redirect_uri, {"error": exc.error, "error_description": exc.description, "state": exc.state})


class SignIn:
    """The sign-in, consent and grant routes over SandboxState."""

    def __init__(self, state: SandboxState, settings: Callable[[], SandboxSettings], base_url: str) -> None:
        self.state = state
        self.settings = settings
        self.scheme = urlsplit(base_url).scheme

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
        params = self._request_params(request)
        if isinstance(params, Response):
            return params
        query = urlencode(params.as_dict())
        if self._signed_in(request) is None:
            return self._login_redirect(f"{AUTHORIZE_PATH}?{query}")
        return redirect(f"{CONSENT_PAGE_PATH}?{query}")

    def _request_params(self, request: Request) -> AuthParams | Response:
        """The authorization request in the query, validated; or the answer to a bad one."""
        values, duplicates = single_values(request.query)
        try:
            return self._validate(values, duplicates)
        except UntrustedRequestError as exc:
            return self._error_html(400, "invalid_request", exc.description)
        except RedirectError as exc:
            return redirect(_error_redirect(exc))

    def consent_page(self, request: Request) -> Response:
        """The Allow/Deny page for a valid request and a signed-in user."""
        params = self._request_params(request)
        if isinstance(params, Response):
            return params
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
        data = json_object(request)
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

    def error_page(self, request: Request) -> Response:
        """GET /zephr/oauth2/error?error=..&error_description=.."""
        values = single_values(request.query)[0]
        error, description = values.get("error", ""), values.get("error_description", "")
        return html_response(
            200,
            lambda nonce: pages.error_page("Sign-in failed", error, description or "Something went wrong.", nonce),
        )
