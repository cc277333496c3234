"""An RFC 6749 authorization server the client does not share a line with: oauthlib's server classes.

oauthlib (``WebApplicationServer``: the authorization code and refresh token grants, PKCE,
bearer tokens, RFC 6749 error responses) decides every protocol question; what it leaves to
its ``RequestValidator`` - storage and client authentication - is filled in here the way a
server built on it does (django-oauth-toolkit, for one): Basic credentials are decoded as
RFC 6749 2.3.1 says (each part form-urldecoded, strictly), or taken from the form body.
The authorize endpoint consents at once (or denies, when told to), as a person would click.

    with OAuthlibServer() as server:
        server.add_client("app", "s3cret")
        ... server.site, server.token_url ...
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.server
import re
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from oauthlib.common import Request
from oauthlib.oauth2 import RequestValidator, WebApplicationServer
from oauthlib.oauth2.rfc6749 import errors

AUTHORIZE_PATHS = ("/zephr/oauth2", "/authorize")  # the app's authorize URL is {site}/zephr/oauth2
TOKEN_PATH = "/token"


@dataclass
class Client:
    client_id: str
    secret: str | None
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    challenge: str | None
    method: str | None
    expires: float


@dataclass
class Grant:
    """A refresh token's grant, for the refresh grant and rotation."""

    client_id: str
    scopes: list[str]


@dataclass
class Store:
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    client_auth: list[str] = field(default_factory=list)  # how each token request authenticated
    code_lifetime: float = 60.0
    rotate: bool = True


def _form_decode(part: str) -> str | None:
    """RFC 6749 2.3.1: one form-urlencoded credential, decoded strictly (None: not properly encoded)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", part):
        return None
    try:
        return unquote_plus(part, errors="strict")
    except UnicodeDecodeError:
        return None


def _is_loopback_match(registered: str, given: str) -> bool:
    """RFC 8252 7.3: a loopback redirect URI matches whatever port the app's listener got."""
    a, b = urlsplit(registered), urlsplit(given)
    loopback = a.hostname in ("127.0.0.1", "::1") and a.scheme == "http"
    same = (a.scheme, a.hostname, a.path, a.query) == (b.scheme, b.hostname, b.path, b.query)
    return loopback and same


class Validator(RequestValidator):  # type: ignore[misc]
    """Storage and client authentication for oauthlib, in memory."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- clients ---------------------------------------------------------------------------------
    def _basic(self, request: Request) -> tuple[str, str] | bool | None:
        """The Basic credentials (None: none sent; False: sent but malformed)."""
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, colon, secret = raw.partition(":")
        decoded = (_form_decode(client_id), _form_decode(secret))
        if not colon or decoded[0] is None or decoded[1] is None:
            return False
        return decoded[0], decoded[1]

    def client_authentication_required(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        return True

    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        basic = self._basic(request)
        if basic is False:
            return False
        if basic:
            client_id, secret, how = basic[0], basic[1], "client_secret_basic"
        else:
            client_id, secret, how = request.client_id, request.client_secret, "client_secret_post"
        client = self.store.clients.get(client_id or "")
        if client is None or client.secret is None or secret is None:
            return False
        if not hmac.compare_digest(secret.encode(), client.secret.encode()):
            return False
        request.client = client
        request.client_id = client.client_id
        self.store.client_auth.append(how)
        return True

    def authenticate_client_id(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> bool:
        return False  # every client here has a secret

    def validate_client_id(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> bool:
        return client_id in self.store.clients

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        client = self.store.clients[client_id]
        return any(_is_loopback_match(uri, redirect_uri) for uri in client.redirect_uris)

    def get_default_redirect_uri(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> str:
        return self.store.clients[client_id].redirect_uris[0]

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return set(scopes) <= set(self.store.clients[client_id].scopes)

    def get_default_scopes(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> list[str]:
        return list(self.store.clients[client_id].scopes[:1])

    def validate_response_type(
        self, client_id: str, response_type: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return response_type == "code"

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return grant_type in ("authorization_code", "refresh_token")

    # -- codes -------------------------------------------------------------------------------------
    def is_pkce_required(self, client_id: str, request: Request) -> bool:
        return True

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Request, *args: Any, **kwargs: Any
    ) -> None:
        self.store.codes[code["code"]] = Code(
            client_id,
            request.redirect_uri,
            list(request.scopes),
            request.code_challenge,
            request.code_challenge_method,
            time.monotonic() + self.store.code_lifetime,
        )

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        saved = self.store.codes.get(code)
        if saved is None or saved.client_id != client_id or time.monotonic() > saved.expires:
            return False
        request.user = "joe"
        request.scopes = saved.scopes
        request.code_challenge = saved.challenge
        request.code_challenge_method = saved.method
        return True

    def get_code_challenge(self, code: str, request: Request) -> str | None:
        saved = self.store.codes.get(code)
        return saved.challenge if saved else None

    def get_code_challenge_method(self, code: str, request: Request) -> str | None:
        saved = self.store.codes.get(code)
        return saved.method if saved else None

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        saved = self.store.codes.get(code)
        return saved is not None and saved.redirect_uri == redirect_uri

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        self.store.codes.pop(code, None)

    # -- tokens ------------------------------------------------------------------------------------
    def save_bearer_token(self, token: dict[str, Any], request: Request, *args: Any, **kwargs: Any) -> None:
        grant = Grant(request.client_id, list(request.scopes))
        self.store.access_tokens[token["access_token"]] = grant
        if "refresh_token" in token:
            if request.refresh_token and request.refresh_token != token["refresh_token"]:
                self.store.refresh_tokens.pop(request.refresh_token, None)  # rotated: the old one is dead
            self.store.refresh_tokens[token["refresh_token"]] = grant

    def rotate_refresh_token(self, request: Request) -> bool:
        return self.store.rotate

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        grant = self.store.refresh_tokens.get(refresh_token)
        if grant is None or grant.client_id != client.client_id:
            return False
        request.user = "joe"
        return True

    def get_original_scopes(self, refresh_token: str, request: Request, *args: Any, **kwargs: Any) -> list[str]:
        return self.store.refresh_tokens[refresh_token].scopes


class OAuthlibServer:
    """oauthlib's ``WebApplicationServer`` over loopback HTTP: authorize (auto-consent) and token endpoints."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.store = Store()
        self.consent = True
        self.server = WebApplicationServer(Validator(self.store), token_expires_in=expires_in)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path not in AUTHORIZE_PATHS:
                    self._answer(404, {}, b"")
                    return
                status, headers = owner._authorize(self._uri())
                self._answer(status, headers, b"")

            def do_POST(self) -> None:
                if urlsplit(self.path).path != TOKEN_PATH:
                    self._answer(404, {}, b"")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                headers, text, status = owner.server.create_token_response(
                    self._uri(), "POST", body, dict(self.headers.items())
                )
                self._answer(status, headers, text.encode())

            def _uri(self) -> str:
                return f"http://{self.headers.get('Host')}{self.path}"

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _authorize(self, uri: str) -> tuple[int, dict[str, str]]:
        try:
            scopes, credentials = self.server.validate_authorization_request(uri)
        except errors.FatalClientError as exc:  # bad client or redirect URI: never redirect
            return 400, {"X-Error": exc.error}
        except errors.OAuth2Error as exc:
            return 302, {"Location": exc.in_uri(exc.redirect_uri)}
        if not self.consent:
            denied = errors.AccessDeniedError(state=credentials.get("state"))
            return 302, {"Location": denied.in_uri(credentials["redirect_uri"])}
        headers, _, status = self.server.create_authorization_response(uri, scopes=scopes, credentials=credentials)
        return status, headers

    def add_client(
        self, client_id: str, secret: str, scopes: tuple[str, ...] = ("user.account:read", "user.profile:read")
    ) -> None:
        """Register a confidential client with the loopback redirect URI the app uses (any port)."""
        self.store.clients[client_id] = Client(client_id, secret, ("http://127.0.0.1/callback",), scopes)

    @property
    def site(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.site}{TOKEN_PATH}"

    def __enter__(self) -> OAuthlibServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)
