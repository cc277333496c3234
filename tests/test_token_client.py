"""The token client: client authentication on the wire, one request helper under exchange and refresh,
and the judging of every kind of answer."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from support.fake_session import FakeTokenEndpoint, token_json

from zephr_desktop.errors import InvalidClientError, InvalidGrantError, TokenEndpointError
from zephr_desktop.oauth import AuthRequest, Token
from zephr_desktop.profile import Profile
from zephr_desktop.token_client import (
    basic_credentials,
    check_answer,
    encode_token_request,
    exchange_code,
    refresh,
)

ZEPHR = Profile.create(name="news", site_url="https://news.example.com", client_id="cid")
RFC = Profile.create(
    name="rfc",
    site_url="https://news.example.com",
    token_url="https://auth.example.com/oauth/token",
    client_id="cid",
    token_format="form",
)


def _basic(header: str) -> bytes:
    assert header.startswith("Basic ")
    return base64.b64decode(header.removeprefix("Basic "))


def test_basic_credentials_are_raw_not_urlencoded() -> None:
    assert _basic(basic_credentials("client", "s:e/c+r=t")) == b"client:s:e/c+r=t"


# -- what goes on the wire -------------------------------------------------------------------------
GRANT = {"grant_type": "authorization_code", "code": "c0de", "redirect_uri": "http://127.0.0.1:8765/callback"}


def test_zephr_mode_sends_json_and_basic() -> None:
    headers, body = encode_token_request(ZEPHR, "cid", "s3cret", GRANT)
    assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
    assert _basic(headers["Authorization"]) == b"cid:s3cret"
    assert json.loads(body) == GRANT  # no client credentials in the body
    assert headers["Content-Length"] == str(len(body))


def test_form_mode_with_body_auth_sends_the_credentials_in_the_form() -> None:
    profile = Profile.create(**{**RFC.__dict__, "client_auth": "body"})
    headers, body = encode_token_request(profile, "cid", "s3cret", GRANT)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded" and "Authorization" not in headers
    assert {k: v[0] for k, v in parse_qs(body.decode()).items()} == {
        **GRANT,
        "client_id": "cid",
        "client_secret": "s3cret",
    }


@pytest.mark.parametrize("profile", [ZEPHR, RFC], ids=["zephr", "rfc"])
def test_a_public_client_sends_its_id_in_the_body(profile: Profile) -> None:
    headers, body = encode_token_request(profile, "cid", None, GRANT)
    assert "Authorization" not in headers
    sent = json.loads(body) if profile is ZEPHR else {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert sent == {**GRANT, "client_id": "cid"}


# -- one helper under exchange and refresh -----------------------------------------------------------
def _request(profile: Profile = ZEPHR) -> AuthRequest:
    return AuthRequest.new(profile, "http://127.0.0.1:8765/callback")


def test_exchange_sends_the_code_grant_and_builds_the_token() -> None:
    fake = FakeTokenEndpoint().answer(token_json(1))
    request = _request()
    token = exchange_code(ZEPHR, "s3cret", request, "c0de", clock=lambda: 1000.5, session_factory=fake)
    (call,) = fake.calls
    assert call.url == ZEPHR.token_url and call.client_secret == "s3cret"
    assert call.grant == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "code_verifier": request.code_verifier,
    }
    assert call.options["allow_redirects"] is False and call.options["verify"] is True
    assert call.options["timeout"] == (10.0, 30.0)
    assert token == Token(
        "oa_access1",
        "bearer",
        4600.5,
        1000.5,
        ("user.account:read", "user.profile:read"),
        "68c0f5ae-f857-408f-a9d6-f511df0f8ae8",
        "refresh1",
    )
    assert fake.opened == fake.closed == 1


def test_exchange_without_pkce_sends_no_verifier() -> None:
    profile = Profile.create(name="x", site_url="https://news.example.com", client_id="cid", pkce=False)
    fake = FakeTokenEndpoint().answer(token_json(1))
    exchange_code(profile, None, _request(profile), "c0de", session_factory=fake)
    assert "code_verifier" not in fake.calls[0].grant


@pytest.mark.parametrize(
    ("answer", "kept"),
    [(token_json(2, refresh_token=None), "refresh1"), (token_json(2), "refresh2")],
    ids=["zephr keeps the refresh token", "rotation"],
)
def test_refresh_sends_the_refresh_grant(answer: dict[str, Any], kept: str) -> None:
    old = Token("oa_access1", "bearer", 4600.0, 1000.0, ("user.account:read",), "u1", "refresh1")
    fake = FakeTokenEndpoint().answer(answer)
    new = refresh(ZEPHR, "s3cret", old, clock=lambda: 5000.0, session_factory=fake)
    assert fake.calls[0].grant == {"grant_type": "refresh_token", "refresh_token": "refresh1"}
    assert new.access_token == "oa_access2" and new.refresh_token == kept
    assert new.obtained_at == 5000.0 and new.expires_at == 8600.0
    assert fake.closed == 1


def test_refresh_without_a_refresh_token_asks_nothing() -> None:
    fake = FakeTokenEndpoint()
    with pytest.raises(InvalidGrantError, match="no refresh token"):
        refresh(ZEPHR, "s3cret", Token("oa_x", "bearer", 1.0, 0.0), session_factory=fake)
    assert fake.calls == [] and fake.opened == 0


def test_the_session_is_closed_when_the_request_fails() -> None:
    fake = FakeTokenEndpoint().answer(requests.exceptions.ConnectionError(ConnectionRefusedError()))
    with pytest.raises(Exception, match="connection refused"):
        exchange_code(ZEPHR, "s3cret", _request(), "c0de", session_factory=fake)
    assert fake.closed == 1


def test_the_clock_is_read_before_the_request() -> None:
    times = iter([100.0, 200.0])
    fake = FakeTokenEndpoint().answer(token_json(1))
    token = exchange_code(ZEPHR, None, _request(), "c0de", clock=lambda: next(times), session_factory=fake)
    assert token.obtained_at == 100.0 and token.expires_at == 3700.0


# -- judging the answer ------------------------------------------------------------------------------
def response(
    status: int, body: bytes | dict[str, Any] | list[Any], content_type: str = "application/json", **headers: str
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.headers["Content-Type"] = content_type
    resp.headers.update(headers)
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return resp


ANSWERS: list[tuple[str, requests.Response, type[Exception], str]] = [
    (
        "redirect",
        response(307, b"", Location="http://evil.example/t"),
        TokenEndpointError,
        "redirected (307) to http://evil.example/t",
    ),
    (
        "invalid_client",
        response(401, {"error": "invalid_client"}),
        InvalidClientError,
        "rejected the client credentials (401 invalid_client)",
    ),
    ("401 page", response(401, b"<html>no</html>", "text/html"), InvalidClientError, "(401 with an HTML page)"),
    (
        "invalid_grant",
        response(400, {"error": "invalid_grant", "error_description": "used"}),
        InvalidGrantError,
        "refused the grant (400 invalid_grant (used))",
    ),
    (
        "other error",
        response(400, {"error": "invalid_request"}),
        TokenEndpointError,
        "refused the request (400 invalid_request)",
    ),
    (
        "5xx",
        response(503, b"busy", "text/plain"),
        TokenEndpointError,
        "failed on its side (503, non-JSON (text/plain))",
    ),
    ("400 empty", response(400, b""), TokenEndpointError, "answered 400 with an empty body"),
    (
        "200 html",
        response(200, b"<html></html>", "text/html"),
        TokenEndpointError,
        "answered 200 with an HTML page instead of a JSON token",
    ),
    ("200 array", response(200, [1]), TokenEndpointError, "answered 200 with JSON that is not an object"),
    ("no access_token", response(200, {"token_type": "bearer"}), TokenEndpointError, "without an access_token"),
    ("mac", response(200, {"access_token": "x", "token_type": "mac"}), TokenEndpointError, "issued a 'mac' token"),
    (
        "escapes in the error",
        response(400, {"error": "bad\x1b[2J\nline"}),
        TokenEndpointError,
        "refused the request (400 bad [2J line)",
    ),
]


@pytest.mark.parametrize(("case", "resp", "kind", "words"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_every_kind_of_answer_has_its_own_error(
    case: str, resp: requests.Response, kind: type[Exception], words: str
) -> None:
    with pytest.raises(kind) as info:
        check_answer(resp, ZEPHR)
    assert type(info.value) is kind
    message = str(info.value)
    assert words in message, message
    assert "\n" not in message and "\x1b" not in message


def test_a_good_answer_is_its_json() -> None:
    assert check_answer(response(200, token_json(1)), ZEPHR) == token_json(1)
