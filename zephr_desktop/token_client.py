"""The token endpoint, through Authlib: client authentication, the code exchange and the refresh.

Zephr wants a JSON body and Basic auth over the raw ``id:secret``. An RFC 6749 server (a
``form`` profile) wants a form body, and Basic over the form-urlencoded id and secret
(RFC 6749 2.3.1), or both in the body (``client_auth = "body"``). All of it is one Authlib
client-auth method, which serves the exchange and the refresh alike; both go through one
helper. Authlib and requests are imported only when a request is made.

The session is a parameter (``session_factory``): tests hand in a fake that answers
``fetch_token`` with the JSON they choose; every answer, fake or real, is checked field by
field before a ``Token`` exists.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote_plus, urlencode

from .errors import InvalidClientError, InvalidGrantError, TokenEndpointError, ZephrError
from .oauth import (
    AuthRequest,
    Token,
    capitalized,
    check_token_response,
    is_zephr,
    redact,
    registration,
    server_name,
    server_text,
)
from .profile import Profile
from .transport import Endpoint, http_timeout, limit_size, send, tls_verify

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)
_AUTH_METHOD = "zephr_desktop"


class TokenSession(Protocol):
    """What the token requests need of a session: Authlib's ``OAuth2Session``, or a test's fake."""

    def fetch_token(self, url: str, **kwargs: Any) -> Mapping[str, Any]:
        """POST a grant (``grant_type`` and its parameters in kwargs) to ``url``; the token response's JSON."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


#: Builds the session for one token request from the profile and its client secret.
SessionFactory = Callable[[Profile, str | None], TokenSession]


# -- client authentication --------------------------------------------------------------------------
def basic_credentials(client_id: str, client_secret: str, *, form_encoded: bool = False) -> str:
    """``Basic base64(id:secret)``.

    Zephr (JSON mode) reads the raw strings, as ``curl -u`` sends them. RFC 6749 2.3.1 (form
    mode) form-urlencodes id and secret first: such a server reads ``+`` as a space and refuses
    a bare ``%``, so a raw secret holding either would be refused there.
    """
    if form_encoded:
        client_id, client_secret = quote_plus(client_id, safe=""), quote_plus(client_secret, safe="")
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def encode_token_request(
    profile: Profile, client_id: str, client_secret: str | None, params: Mapping[str, str]
) -> tuple[dict[str, str], bytes]:
    """The headers and body of a token request: client authentication and body format as the profile says."""
    headers = {"Accept": "application/json"}
    body = dict(params)
    if profile.client_auth == "basic" and client_secret:
        headers["Authorization"] = basic_credentials(client_id, client_secret, form_encoded=not is_zephr(profile))
    else:
        body["client_id"] = client_id
        if client_secret:
            body["client_secret"] = client_secret
    if is_zephr(profile):
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    else:
        data = urlencode(body).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Content-Length"] = str(len(data))
    return headers, data


def _client_auth_for(profile: Profile) -> Callable[..., tuple[str, dict[str, str], bytes]]:
    """Authlib client-auth method: re-encode Authlib's form body as the profile asks, and authenticate."""
    from authlib.common.urls import url_decode

    def prepare(
        client: Any, method: str, uri: str, headers: dict[str, str], body: Any
    ) -> tuple[str, dict[str, str], bytes]:
        text = body.decode() if isinstance(body, bytes) else (body or "")
        # No scope: Authlib may add it to a refresh, and Zephr does not list it there.
        params = {k: v for k, v in url_decode(text) if k not in ("client_id", "client_secret", "scope")}
        extra, data = encode_token_request(profile, client.client_id, client.client_secret, params)
        headers.update(extra)
        return uri, headers, data

    return prepare


# -- judging the answer ---------------------------------------------------------------------------
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


def _refused(profile: Profile, status: int, data: dict[str, Any] | None, kind: str) -> TokenEndpointError | None:
    """The error for an answer that refuses the request (an RFC 6749 5.2 error, a 4xx/5xx), or None."""
    url = profile.token_url
    server = capitalized(server_name(profile, url))
    error = server_text(data.get("error")) if data and data.get("error") else None
    description = server_text(data.get("error_description")) if data and data.get("error_description") else None
    detail = f" ({description})" if description else ""
    if status == 401 or error == "invalid_client":
        # A 401 page that is not JSON may come from a web server or proxy in front of the endpoint.
        what = f"{status} {error}{detail}" if error else f"{status} with {kind}"
        endpoint = "Zephr's token endpoint" if is_zephr(profile) else "that server's token endpoint"
        return InvalidClientError(
            f"{server} rejected the client credentials ({what}). Check the client ID and secret on "
            f"{registration(profile)} (`zephr-desktop profile add` again to change them)"
            + ("." if data else f", and that the token URL is {endpoint}."),
            status=status,
            error=error or "invalid_client",
            description=description,
        )
    if error == "invalid_grant":
        return InvalidGrantError(
            f"{server} refused the grant ({status} invalid_grant{detail}): the authorization code or refresh "
            "token is expired, already used, or revoked. Sign in again with `zephr-desktop login`.",
            status=status,
            error=error,
            description=description,
        )
    if error:
        return TokenEndpointError(
            f"The token endpoint {url} refused the request ({status} {error}{detail}). Check the profile's "
            "token URL, token_format and client_auth settings.",
            status=status,
            error=error,
            description=description,
        )
    if status >= 500:
        down = "the site's Zephr service is down" if is_zephr(profile) else "that server is down"
        return TokenEndpointError(
            f"The token endpoint {url} failed on its side ({status}, {kind}). Try again in a minute; "
            f"if it persists, {down}.",
            status=status,
        )
    return None


def check_answer(resp: requests.Response, profile: Profile) -> dict[str, Any]:
    """A token endpoint's answer as its checked JSON, or the specific error with its fix."""
    url, status = profile.token_url, resp.status_code
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
    refusal = _refused(profile, status, data, kind)
    if refusal is not None:
        raise refusal
    if status != 200:
        default = " (default https://console.zephr.com/zephr/oauth2/token)" if is_zephr(profile) else ""
        raise TokenEndpointError(
            f"The token endpoint {url} answered {status} with {kind} instead of a token. Check the "
            f"profile's token URL{default}.",
            status=status,
        )
    if data is None:
        raise TokenEndpointError(
            f"The token endpoint {url} answered 200 with {kind} instead of a JSON token. Check the "
            "profile's token URL: it may point at a web page rather than the OAuth token endpoint.",
            status=status,
        )
    # Every field, before Authlib reads any of it.
    check_token_response(data, f"The token endpoint {url}")
    return data


def _oversized(profile: Profile, resp: requests.Response) -> ZephrError:
    return TokenEndpointError(
        f"The token endpoint {profile.token_url} answered {resp.status_code} with over 1 MB of data, which no "
        "token response needs. Check the profile's token URL.",
        status=resp.status_code,
    )


# -- the session and the requests -------------------------------------------------------------------
def authlib_session(profile: Profile, client_secret: str | None) -> TokenSession:
    """Authlib's requests session, set up for the profile's token endpoint (the default session factory)."""
    from authlib.integrations.requests_client import OAuth2Session

    # No scope= here: Authlib would add it to the refresh body, which Zephr does not list.
    session = OAuth2Session(
        client_id=profile.client_id,
        client_secret=client_secret,
        token_endpoint=profile.token_url,
        token_endpoint_auth_method=_AUTH_METHOD,
    )
    session.register_client_auth_method((_AUTH_METHOD, _client_auth_for(profile)))

    def judge(resp: requests.Response) -> requests.Response:
        # Authlib parses only the happy path well; every answer is judged here first.
        check_answer(resp, profile)
        return resp

    session.register_compliance_hook("access_token_response", judge)
    limit_size(session, lambda resp: _oversized(profile, resp))
    return session


def _fetch(session: TokenSession, profile: Profile, grant: Mapping[str, str], **options: Any) -> dict[str, Any]:
    from authlib.integrations.base_client import OAuthError

    try:
        return dict(session.fetch_token(profile.token_url, **options, **grant))
    except OAuthError as exc:  # pragma: no cover - the compliance hook raises first
        raise TokenEndpointError(
            f"The token endpoint refused the request ({server_text(exc.error)}).", error=exc.error
        ) from exc
    except (ValueError, TypeError, KeyError) as exc:
        # Authlib reading a token answer the checks let through; never a traceback.
        raise TokenEndpointError(
            f"The token endpoint {profile.token_url} answered with a token Authlib cannot read "
            f"({type(exc).__name__}). Check the profile's token URL."
        ) from exc


def request_token(
    profile: Profile,
    client_secret: str | None,
    grant: Mapping[str, str],
    *,
    previous: Token | None = None,
    clock: Callable[[], float] = time.time,
    session_factory: SessionFactory = authlib_session,
) -> Token:
    """POST one grant to the profile's token endpoint; the checked Token (``previous`` fills what it omits)."""
    timeout, verify = http_timeout(), tls_verify(profile.tls_verify, profile.name)
    endpoint = Endpoint(profile.token_url, "the token endpoint", "token URL")
    session = session_factory(profile, client_secret)
    try:
        # Read the clock just before the request: expires_at must not be later than the server's.
        started = clock()
        data = send(
            lambda: _fetch(session, profile, grant, timeout=timeout, verify=verify, allow_redirects=False),
            endpoint,
            timeout,
        )
    finally:
        session.close()
    return Token.from_response(data, started, previous, source=f"The token endpoint {profile.token_url}")


def exchange_code(
    profile: Profile,
    client_secret: str | None,
    request: AuthRequest,
    code: str,
    *,
    clock: Callable[[], float] = time.time,
    session_factory: SessionFactory = authlib_session,
) -> Token:
    """Exchange an authorization code for a token (JSON body + Basic auth by default)."""
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri}
    if request.code_verifier:
        grant["code_verifier"] = request.code_verifier
    log.debug("exchanging code %s at %s", redact(code), profile.token_url)
    token = request_token(profile, client_secret, grant, clock=clock, session_factory=session_factory)
    log.debug("received access token %s, expires at %s", redact(token.access_token), token.expires_at)
    return token


def refresh(
    profile: Profile,
    client_secret: str | None,
    token: Token,
    *,
    clock: Callable[[], float] = time.time,
    session_factory: SessionFactory = authlib_session,
) -> Token:
    """Use the refresh token; a response without ``refresh_token`` keeps the old one."""
    if not token.refresh_token:
        raise InvalidGrantError(
            "The stored token has no refresh token and has expired. Sign in again with `zephr-desktop login`."
        )
    log.debug("refreshing with %s at %s", redact(token.refresh_token), profile.token_url)
    grant = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
    new = request_token(profile, client_secret, grant, previous=token, clock=clock, session_factory=session_factory)
    log.debug(
        "refreshed: access token %s, refresh token %s",
        redact(new.access_token),
        "rotated" if new.refresh_token != token.refresh_token else "kept",
    )
    return new
