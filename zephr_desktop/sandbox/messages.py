"""The sandbox's HTTP messages: what a route reads (Request) and writes (Response, Abort).

Also the builders every route answers with (JSON that is never cached, HTML pages with a
CSP nonce and the security headers, redirects), reading a JSON object body, and the paths,
cookie name, media types and body limit the routes and the HTTP server share.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY = 1024 * 1024
SESSION_COOKIE = "blaize_session"
AUTHORIZE_PATH = "/zephr/oauth2"
CONSENT_PAGE_PATH = "/zephr/oauth2/authorize-consent"
LOGIN_PATH = "/zephr/login"
TOKEN_PATH = "/zephr/oauth2/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


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


def json_object(request: Request) -> dict[str, Any]:
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
