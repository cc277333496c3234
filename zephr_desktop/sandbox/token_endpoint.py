"""The sandbox's token endpoint (RFC 6749 4.1.3 and 6, Zephr's JSON flavour).

Parsing the request body (JSON, or in RFC mode a form), client authentication (Basic, a
public client's client_id, in RFC mode client_secret_post and form-urlencoded Basic
credentials), running the authorization_code and refresh_token grants, RFC 6749 5.2 error
answers, and the answers under an injected fault.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from . import pages
from .messages import FORM_TYPE, JSON_TYPE, MAX_BODY, Request, Response, html_response, json_response
from .model import TEST_USERS, Client, SandboxSettings
from .protocol import OAuthError, random_alnum, single_values
from .state import SandboxState


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


class TokenEndpoint:
    """POST /zephr/oauth2/token over SandboxState."""

    def __init__(self, state: SandboxState, settings: Callable[[], SandboxSettings]) -> None:
        self.state = state
        self.settings = settings

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
