"""The OAuth 2.0 protocol as Zephr speaks it: values, parsing, and the token requests.

Pure logic (``AuthRequest``, ``parse_callback``, ``Token``, ``parse_scopes``) needs only
the standard library. The token requests go through Authlib's requests client with a
custom client-auth method, because Zephr wants a JSON body with Basic auth where RFC
6749 says form-encoded; Authlib and requests are imported only when a request is made.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .config import Profile
from .errors import (
    AccessDeniedError,
    AuthorizationError,
    CallbackError,
    ConfigError,
    InvalidClientError,
    InvalidGrantError,
    NetworkError,
    TokenEndpointError,
)
from .paths import refresh_due, refresh_margin

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: Connect and read timeouts for every HTTP request (requests has none by default).
HTTP_TIMEOUT = (10.0, 30.0)
#: Overrides HTTP_TIMEOUT: seconds for both, or ``CONNECT,READ`` (for slow links; tests use short ones).
HTTP_TIMEOUT_ENV = "ZEPHR_DESKTOP_HTTP_TIMEOUT"
#: A token response larger than this is refused (unread when its Content-Length says so).
MAX_TOKEN_RESPONSE = 1024 * 1024
_AUTH_METHOD = "zephr_desktop"
_MAX_SERVER_TEXT = 200


def http_timeout() -> tuple[float, float]:
    """The (connect, read) timeouts: ``HTTP_TIMEOUT``, or what ``ZEPHR_DESKTOP_HTTP_TIMEOUT`` says."""
    raw = os.environ.get(HTTP_TIMEOUT_ENV, "").strip()
    if not raw:
        return HTTP_TIMEOUT
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(
            f"{HTTP_TIMEOUT_ENV}={raw[:40]!r} is not a timeout: give seconds (e.g. 30) or CONNECT,READ "
            "(e.g. 5,30), or unset it."
        )
    return values[0], values[-1]


def tls_verify(profile: Profile) -> bool | str:
    """``verify=`` for requests to the profile's servers; says loudly when verification is off."""
    if profile.insecure_skip_tls_verify:
        log.warning(
            "TLS certificate verification is OFF for profile '%s' (insecure_skip_tls_verify); "
            "anyone on the network path can read the tokens",
            profile.name,
        )
    return profile.tls_verify


def server_text(value: Any, limit: int = _MAX_SERVER_TEXT) -> str:
    """Text a server chose (an error description, a content type), safe to put in a one-line message."""
    # A hostile or broken server must not add lines to stderr or send terminal escapes.
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(value: str | None) -> str:
    """A short, safe prefix of a secret for logs: ``oa_rrc…``."""
    if not value:
        return "-"
    return value[:6] + "…" if len(value) > 6 else "…"


def parse_scopes(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Scopes as a tuple, from Zephr's ``"a b"`` or ``"a, b"`` forms or a list."""
    if value is None:
        return ()
    items = value if not isinstance(value, str) else re.split(r"[,\s]+", value)
    out: list[str] = []
    for item in items:
        item = str(item).strip()
        if item and item not in out:
            out.append(item)
    return tuple(out)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 code challenge for ``verifier`` (RFC 7636 4.2)."""
    import hashlib

    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class AuthRequest:
    """One sign-in attempt: fresh state and PKCE verifier, and the authorize URL."""

    profile: Profile
    redirect_uri: str
    state: str = field(repr=False)
    code_verifier: str | None = field(repr=False)

    @classmethod
    def new(cls, profile: Profile, redirect_uri: str | None = None) -> AuthRequest:
        """A new attempt with a random single-use state and (if the profile wants it) PKCE."""
        import secrets

        verifier = secrets.token_urlsafe(64) if profile.pkce else None
        return cls(profile, redirect_uri or profile.redirect_uri, secrets.token_urlsafe(32), verifier)

    @property
    def url(self) -> str:
        """``{site}/zephr/oauth2?...`` with the five parameters Zephr requires, plus PKCE."""
        params = {
            "client_id": self.profile.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.profile.scopes),
            "state": self.state,
        }
        if self.code_verifier:
            params["code_challenge"] = s256_challenge(self.code_verifier)
            params["code_challenge_method"] = "S256"
        return f"{self.profile.site_url}/zephr/oauth2?{urlencode(params)}"


def parse_callback(params: Mapping[str, Sequence[str]], expected_state: str) -> str:
    """Return the authorization code from callback query params, checking error, state, code in that order."""
    errors = params.get("error") or []
    if errors:
        error = server_text(errors[0])
        descriptions = params.get("error_description") or []
        description = server_text(descriptions[0]) if descriptions and descriptions[0] else None
        detail = f" ({description})" if description else ""
        if error == "access_denied":
            raise AccessDeniedError(
                f"Sign-in was denied on the consent page{detail}. Run it again and click Allow.",
                error=error,
                description=description,
            )
        raise AuthorizationError(
            f"Zephr refused the sign-in: {error}{detail}. Check the profile's client ID, scopes and "
            "redirect URI against the site's Third Party Authentication screen.",
            error=error,
            description=description,
        )
    states = params.get("state") or []
    import hmac

    if len(states) != 1 or not hmac.compare_digest(states[0].encode(), expected_state.encode()):
        raise CallbackError(
            "The redirect does not belong to this sign-in (its state does not match). "
            "Start the sign-in again and use the newest link."
        )
    codes = params.get("code") or []
    if len(codes) != 1 or not codes[0]:
        raise CallbackError("The redirect carries no single authorization code. Start the sign-in again.")
    return codes[0]


def parse_redirect_url(url: str, expected_state: str, redirect_uri: str) -> str:
    """Return the code from a redirect URL pasted by the person."""
    parts = urlsplit(url.strip())
    expected = urlsplit(redirect_uri)
    if not parts.query or parts.path.rstrip("/") != expected.path.rstrip("/"):
        raise CallbackError(
            f"That is not the redirect URL. Paste the whole address the browser ended on "
            f"(it starts with {expected.scheme}://{expected.hostname}:...{expected.path}?code=...)."
        )
    return parse_callback(parse_qs(parts.query, keep_blank_values=True), expected_state)


@dataclass(frozen=True)
class Token:
    """An access token with what Zephr told about it; ``expires_at`` is epoch seconds."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None
    obtained_at: float
    scopes: tuple[str, ...] = ()
    user_id: str | None = None
    refresh_token: str | None = field(default=None, repr=False)

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative when expired), None if the server gave no lifetime."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def refresh_margin(self) -> float:
        """Refresh when less than ``min(60 s, a third of the lifetime)`` remains (``paths.refresh_margin``)."""
        return refresh_margin(self.expires_at, self.obtained_at)

    def needs_refresh(self, now: float | None = None) -> bool:
        """True when the token is expired or within the refresh margin."""
        return refresh_due(self.expires_at, self.obtained_at, time.time() if now is None else now)

    def is_expired(self, now: float | None = None) -> bool:
        """True once ``expires_at`` has passed."""
        left = self.seconds_left(now)
        return left is not None and left <= 0

    @classmethod
    def from_response(cls, data: Mapping[str, Any], obtained_at: float, previous: Token | None = None) -> Token:
        """Build from a token endpoint's JSON (already checked); keeps the old refresh token if none came."""
        expires_in = data.get("expires_in")
        expires_at = obtained_at + float(expires_in) if expires_in is not None else None
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        scopes = parse_scopes(data.get("scope")) or (previous.scopes if previous else ())
        user_id = data.get("user_id")
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "bearer"),
            expires_at=expires_at,
            obtained_at=obtained_at,
            scopes=scopes,
            user_id=str(user_id) if user_id is not None else (previous.user_id if previous else None),
            refresh_token=str(refresh) if refresh else None,
        )


def basic_credentials(client_id: str, client_secret: str) -> str:
    """``Basic base64(id:secret)`` over the raw strings, as ``curl -u`` sends it (no urlencoding)."""
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _client_auth_for(profile: Profile) -> Callable[..., tuple[str, dict[str, str], bytes]]:
    """Authlib client-auth method: re-encode the form body as the profile asks and authenticate."""
    from authlib.common.urls import url_decode

    def prepare(
        client: Any, method: str, uri: str, headers: dict[str, str], body: Any
    ) -> tuple[str, dict[str, str], bytes]:
        text = body.decode() if isinstance(body, bytes) else (body or "")
        params = {k: v for k, v in url_decode(text) if k not in ("client_id", "client_secret", "scope")}
        if profile.client_auth == "basic" and client.client_secret:
            headers["Authorization"] = basic_credentials(client.client_id, client.client_secret)
        else:
            params["client_id"] = client.client_id
            if client.client_secret:
                params["client_secret"] = client.client_secret
        if profile.token_format == "json":
            data = json.dumps(params).encode()
            headers["Content-Type"] = "application/json"
        else:
            data = urlencode(params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Accept"] = "application/json"
        headers["Content-Length"] = str(len(data))
        return uri, headers, data

    return prepare


def _describe_body(resp: requests.Response) -> tuple[dict[str, Any] | None, str]:
    """The JSON object of a response if it is one, and a short human description of its kind."""
    ctype = server_text(resp.headers.get("Content-Type", "").split(";")[0].strip(), 60) or "no content type"
    if not resp.content:
        return None, "an empty body"
    try:
        data = json.loads(resp.content)
    except ValueError:
        kind = "an HTML page" if "html" in ctype or resp.content.lstrip()[:1] == b"<" else f"non-JSON ({ctype})"
        return None, kind
    return (data, "JSON") if isinstance(data, dict) else (None, "JSON that is not an object")


def check_token_response(resp: requests.Response, url: str) -> dict[str, Any]:
    """Turn a token endpoint response into its JSON, or raise the specific error with the fix."""
    status = resp.status_code
    if len(resp.content) > MAX_TOKEN_RESPONSE:
        raise _oversized(url, status)
    if 300 <= status < 400:
        # Not followed (allow_redirects=False): the code or refresh token and the client secret
        # would travel to wherever the answer points, plain http included.
        location = server_text(resp.headers.get("Location", "nowhere"))
        raise TokenEndpointError(
            f"The token endpoint {url} redirected ({status}) to {location}; token requests are not sent on "
            "to another address. Set the profile's token URL to the final address.",
            status=status,
        )
    data, kind = _describe_body(resp)
    error = server_text(data.get("error")) if data and data.get("error") else None
    description = server_text(data.get("error_description")) if data and data.get("error_description") else None
    detail = f" ({description})" if description else ""
    if status == 401 or error == "invalid_client":
        # A 401 page that is not Zephr's JSON may come from a web server or proxy in front of it.
        what = f"{status} {error}{detail}" if error else f"{status} with {kind}"
        raise InvalidClientError(
            f"Zephr rejected the client credentials ({what}). Check the client ID and secret on the site's "
            "Third Party Authentication screen (`zephr-desktop profile add` again to change them)"
            + ("." if data else ", and that the token URL is Zephr's token endpoint."),
            status=status,
            error=error or "invalid_client",
            description=description,
        )
    if error == "invalid_grant":
        raise InvalidGrantError(
            f"Zephr refused the grant ({status} invalid_grant{detail}): the authorization code or refresh "
            "token is expired, already used, or revoked. Sign in again with `zephr-desktop login`.",
            status=status,
            error=error,
            description=description,
        )
    if error:
        raise TokenEndpointError(
            f"The token endpoint refused the request ({status} {error}{detail}). Check the profile's "
            "token URL, token_format and client_auth settings.",
            status=status,
            error=error,
            description=description,
        )
    if status >= 500:
        raise TokenEndpointError(
            f"The token endpoint {url} failed on its side ({status}, {kind}). Try again in a minute; "
            "if it persists, the site's Zephr service is down.",
            status=status,
        )
    if status != 200:
        raise TokenEndpointError(
            f"The token endpoint {url} answered {status} with {kind} instead of a token. Check the "
            "profile's token URL (default https://console.zephr.com/zephr/oauth2/token).",
            status=status,
        )
    if data is None:
        raise TokenEndpointError(
            f"The token endpoint {url} answered 200 with {kind} instead of a JSON token. Check the "
            "profile's token URL: it may point at a web page rather than the OAuth token endpoint.",
            status=status,
        )
    if not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise TokenEndpointError(
            f"The token endpoint {url} answered 200 without an access_token. Check the profile's token URL.",
            status=status,
        )
    token_type = str(data.get("token_type") or "bearer")
    if token_type.lower() != "bearer":
        raise TokenEndpointError(
            f"The token endpoint issued a '{server_text(token_type, 40)}' token; only bearer tokens can be used with "
            "Zephr's Public API. Check the profile's token URL.",
            status=status,
        )
    expires_in = data.get("expires_in")
    # RFC 6749 5.1: seconds as a number. A numeric string is tolerated only as whole seconds,
    # which is what Authlib can read.
    usable = (isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
              and math.isfinite(expires_in) and expires_in >= 0) or (
        isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit())
    if expires_in is not None and not usable:
        raise TokenEndpointError(
            f"The token endpoint sent an unusable expires_in ({server_text(repr(expires_in), 40)}). Check the "
            "profile's token URL.",
            status=status,
        )
    return data


def _oversized(url: str, status: int) -> TokenEndpointError:
    return TokenEndpointError(
        f"The token endpoint {url} answered {status} with over 1 MB of data, which no token "
        "response needs. Check the profile's token URL.",
        status=status,
    )


def _session(profile: Profile, client_secret: str | None) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    # No scope= here: Authlib would add it to the refresh body, which Zephr does not list.
    session = OAuth2Session(
        client_id=profile.client_id,
        client_secret=client_secret,
        token_endpoint=profile.token_url,
        token_endpoint_auth_method=_AUTH_METHOD,
    )
    session.register_client_auth_method((_AUTH_METHOD, _client_auth_for(profile)))

    def hook(resp: requests.Response) -> requests.Response:
        # Authlib parses only the happy path well; every other answer is judged here first.
        check_token_response(resp, profile.token_url)
        return resp

    session.register_compliance_hook("access_token_response", hook)
    session.register_compliance_hook("refresh_token_response", hook)

    def refuse_oversized(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        # Runs before requests reads the body: a declared giant is refused without reading it.
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_TOKEN_RESPONSE:
            resp.close()
            raise _oversized(profile.token_url, resp.status_code)
        return resp

    session.hooks["response"].append(refuse_oversized)
    return session


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (requests -> urllib3 -> socket), breadth first."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 16:
        item = todo.pop(0)
        if item is None or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [arg for arg in item.args if isinstance(arg, BaseException)]
        reason = getattr(item, "reason", None)
        todo += [reason if isinstance(reason, BaseException) else None, item.__cause__, item.__context__]
    return found


def _network_error(exc: Exception, profile: Profile, timeout: tuple[float, float]) -> NetworkError:
    """One message per way the network can fail, each with its fix."""
    import http.client
    import socket
    import ssl

    import requests

    url = profile.token_url
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    causes = _causes(exc)
    # For --verbose: what the network layers said (URLs and reasons; request bodies never appear here).
    log.debug("request failed: %s", " <- ".join(f"{type(c).__name__}: {str(c)[:160]}" for c in causes[1:5]))
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            return NetworkError(
                f"TLS verification failed for {url}: the certificate is not trusted. If the site uses a "
                "private CA, set ca_bundle in the profile (or REQUESTS_CA_BUNDLE)."
            )
        unusable = [c for c in causes if isinstance(c, ssl.SSLError) and c.library in ("X509", "PEM")]
        if unusable:
            return NetworkError(
                f"The CA certificates to check {url} could not be loaded ({unusable[0].reason or 'unreadable'}). "
                "Check the profile's ca_bundle, and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE if they are set: each "
                "must be a PEM file of certificates."
            )
        # Not a certificate problem: typically https:// on a port that speaks plain http.
        return NetworkError(
            f"The TLS handshake with {where} failed for the token endpoint {url}. Check that the token URL's "
            "scheme and port match the server (https:// only where it speaks TLS)."
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return NetworkError(
            f"The proxy refused or failed the request to {url}. Check HTTPS_PROXY / HTTP_PROXY (and NO_PROXY "
            "for hosts that must be reached directly)."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NetworkError(
            f"Could not connect to {where} within {timeout[0]:g} s. Check the profile's token URL and your "
            "network (a firewall may drop the connection)."
        )
    # A body that stalls half-way surfaces as a ConnectionError around a read timeout.
    if isinstance(exc, requests.exceptions.Timeout) or any(isinstance(c, TimeoutError) for c in causes):
        return NetworkError(
            f"The token endpoint {url} did not answer within {timeout[1]:g} s. Check the network "
            f"and the profile's token URL, then try again (or raise {HTTP_TIMEOUT_ENV})."
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return NetworkError(
            f"Cannot reach the token endpoint {url}: nothing is listening at {where} (connection refused). "
            "Check the profile's token URL (and that the sandbox is running, for a sandbox profile)."
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        return NetworkError(
            f"The host name {parts.hostname} in the token URL {url} cannot be resolved. Check the profile's "
            "token URL and your DNS or network connection."
        )
    if any(isinstance(c, http.client.RemoteDisconnected | ConnectionResetError) for c in causes):
        return NetworkError(
            f"The token endpoint {url} closed the connection without answering. Try again; if it keeps "
            "happening, check the profile's token URL and any proxy in between."
        )
    if any(isinstance(c, http.client.BadStatusLine) for c in causes):
        return NetworkError(
            f"The server at {where} answered something that is not HTTP. Check the token URL's scheme and "
            "port (http:// where the server expects https://, or another service's port)."
        )
    return NetworkError(
        f"Cannot reach the token endpoint {url} ({type(exc).__name__}). Check the URL and your network "
        "connection (and that the sandbox is running, for a sandbox profile)."
    )


def _call(profile: Profile, fn: Callable[[], Any], timeout: tuple[float, float]) -> Any:
    import requests
    from authlib.integrations.base_client import OAuthError

    try:
        return fn()
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _network_error(exc, profile, timeout) from exc
    except requests.exceptions.RequestException as exc:
        raise NetworkError(f"The request to {profile.token_url} failed ({type(exc).__name__}).") from exc
    except OAuthError as exc:  # pragma: no cover - the compliance hook raises first
        raise TokenEndpointError(f"The token endpoint refused the request ({exc.error}).", error=exc.error) from exc
    except (ValueError, TypeError, KeyError) as exc:
        # Authlib reading a token answer the checks above let through; never a traceback.
        raise TokenEndpointError(
            f"The token endpoint {profile.token_url} answered with a token Authlib cannot read "
            f"({type(exc).__name__}). Check the profile's token URL."
        ) from exc


def exchange_code(
    profile: Profile,
    client_secret: str | None,
    request: AuthRequest,
    code: str,
    *,
    clock: Callable[[], float] = time.time,
) -> Token:
    """Exchange an authorization code for a token (JSON body + Basic auth by default)."""
    session = _session(profile, client_secret)
    kwargs: dict[str, Any] = {"code": code, "redirect_uri": request.redirect_uri}
    if request.code_verifier:
        kwargs["code_verifier"] = request.code_verifier
    timeout, verify = http_timeout(), tls_verify(profile)
    log.debug("exchanging code %s at %s", redact(code), profile.token_url)
    started = clock()
    with session:
        _call(
            profile,
            lambda: session.fetch_token(
                profile.token_url,
                grant_type="authorization_code",
                timeout=timeout,
                verify=verify,
                allow_redirects=False,
                **kwargs,
            ),
            timeout,
        )
        data = dict(session.token)
    token = Token.from_response(data, started)
    log.debug("received access token %s, expires in %s s", redact(token.access_token), data.get("expires_in"))
    return token


def refresh(
    profile: Profile, client_secret: str | None, token: Token, *, clock: Callable[[], float] = time.time
) -> Token:
    """Use the refresh token; a response without ``refresh_token`` keeps the old one."""
    if not token.refresh_token:
        raise InvalidGrantError(
            "The stored token has no refresh token and has expired. Sign in again with `zephr-desktop login`."
        )
    session = _session(profile, client_secret)
    refresh_token = token.refresh_token
    timeout, verify = http_timeout(), tls_verify(profile)
    log.debug("refreshing with %s at %s", redact(refresh_token), profile.token_url)
    # Read the clock just before the request: expires_at must not be later than the server's.
    started = clock()
    with session:
        _call(
            profile,
            lambda: session.refresh_token(
                profile.token_url,
                refresh_token=refresh_token,
                timeout=timeout,
                verify=verify,
                allow_redirects=False,
            ),
            timeout,
        )
        data = dict(session.token)
    new = Token.from_response(data, started, previous=token)
    log.debug(
        "refreshed: access token %s, refresh token %s",
        redact(new.access_token),
        "rotated" if new.refresh_token != refresh_token else "kept",
    )
    return new
