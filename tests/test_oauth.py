"""The protocol core: authorize URL, callback parsing order, tokens, scopes, refresh margin."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from zephr_desktop.errors import AccessDeniedError, AuthorizationError, CallbackError
from zephr_desktop.oauth import (
    AuthRequest,
    Token,
    parse_callback,
    parse_redirect_url,
    parse_scopes,
    redact,
)
from zephr_desktop.profile import Profile

PROFILE = Profile.create(name="news", site_url="https://news.example.com", client_id="cid")


def test_authorize_url_has_zephr_params_and_pkce() -> None:
    req = AuthRequest.new(PROFILE)
    parts = urlsplit(req.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://news.example.com/zephr/oauth2"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["client_id"] == "cid"
    assert q["response_type"] == "code"
    assert q["redirect_uri"] == "http://127.0.0.1:8765/callback"
    assert q["scope"] == "user.account:read user.profile:read"
    assert q["state"] == req.state
    assert q["code_challenge_method"] == "S256"
    assert req.code_verifier is not None
    digest = hashlib.sha256(req.code_verifier.encode()).digest()
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert set(q) == {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }


@pytest.mark.parametrize(
    ("authorize_url", "endpoint", "kept"),
    [
        ("https://auth.example.com/oauth2/authorize", "https://auth.example.com/oauth2/authorize", {}),
        # RFC 6749 3.1: the endpoint's own query is kept, the request's parameters added to it.
        ("https://login.example.com/t/authorize?p=b2c_1_signin", "https://login.example.com/t/authorize",
         {"p": "b2c_1_signin"}),
    ],
)  # fmt: skip
def test_authorize_url_uses_the_profiles_endpoint(authorize_url: str, endpoint: str, kept: dict[str, str]) -> None:
    profile = Profile.create(name="rfc", site_url="https://news.example.com", client_id="cid",
                             authorize_url=authorize_url, scopes=["openid", "offline_access"])  # fmt: skip
    req = AuthRequest.new(profile)
    parts = urlsplit(req.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == endpoint
    q = {k: v for k, v in parse_qs(parts.query).items()}
    assert all(len(v) == 1 for v in q.values())
    assert {k: v[0] for k, v in q.items() if k in kept} == kept
    assert q["client_id"] == ["cid"] and q["state"] == [req.state] and q["scope"] == ["openid offline_access"]


def test_each_attempt_is_fresh_and_repr_hides_secrets() -> None:
    a, b = AuthRequest.new(PROFILE), AuthRequest.new(PROFILE)
    assert a.state != b.state and a.code_verifier != b.code_verifier
    assert len(a.state) >= 32 and 43 <= len(a.code_verifier or "") <= 128
    assert a.state not in repr(a) and (a.code_verifier or "") not in repr(a)


def test_no_pkce_when_profile_says_so() -> None:
    req = AuthRequest.new(Profile.create(name="x", site_url="https://a.example.com", client_id="c", pkce=False))
    assert req.code_verifier is None and "code_challenge" not in req.url


@pytest.mark.parametrize(
    ("params", "error"),
    [
        # error wins over everything, even a bad state
        ({"error": ["access_denied"], "state": ["wrong"]}, AccessDeniedError),
        ({"error": ["invalid_scope"], "error_description": ["nope"], "state": ["S"]}, AuthorizationError),
        ({"code": ["c"], "state": ["wrong"]}, CallbackError),
        ({"code": ["c"]}, CallbackError),
        ({"code": ["c"], "state": ["S", "S"]}, CallbackError),
        ({"state": ["S"]}, CallbackError),
        ({"code": ["a", "b"], "state": ["S"]}, CallbackError),
        ({"code": [""], "state": ["S"]}, CallbackError),
    ],
)
def test_parse_callback_order_error_state_code(params: dict[str, list[str]], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_callback(params, "S")


def test_parse_callback_ok_and_messages() -> None:
    assert parse_callback({"code": ["kcpa10fzqa9nmut95duwok0c"], "state": ["S"]}, "S") == "kcpa10fzqa9nmut95duwok0c"
    with pytest.raises(AuthorizationError) as info:
        parse_callback({"error": ["invalid_scope"], "error_description": ["bad scope"]}, "S")
    assert "invalid_scope" in str(info.value) and "bad scope" in str(info.value)


def test_parse_pasted_redirect_url() -> None:
    uri = "http://127.0.0.1:8765/callback"
    assert parse_redirect_url(f"  {uri}?code=abc&state=S \n", "S", uri) == "abc"
    with pytest.raises(CallbackError, match="not the redirect URL"):
        parse_redirect_url("https://news.example.com/other?code=abc&state=S", "S", uri)
    with pytest.raises(CallbackError, match="not the redirect URL"):
        parse_redirect_url("abc", "S", uri)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user.account:read user.profile:read", ("user.account:read", "user.profile:read")),
        ("user.account:read, user.profile:read", ("user.account:read", "user.profile:read")),
        ("user.account:read,user.profile:read", ("user.account:read", "user.profile:read")),
        (["user.account:read", "user.account:read"], ("user.account:read",)),
        ("", ()),
        (None, ()),
    ],
)
def test_parse_scopes(raw: object, expected: tuple[str, ...]) -> None:
    assert parse_scopes(raw) == expected  # type: ignore[arg-type]


def test_token_from_zephr_sample_and_refresh_keeps_refresh_token() -> None:
    sample = {
        "scope": "user.account:read, user.profile:read",
        "access_token": "oa_rrcly8rsusfc1e5sdgxzv8uh",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": "1if5j2aaverj80tx2nvvvutq",
        "user_id": "68c0f5ae-f857-408f-a9d6-f511df0f8ae8",
    }
    t = Token.from_response(sample, obtained_at=1000.5)
    assert t.expires_at == 4600.5
    assert t.scopes == ("user.account:read", "user.profile:read")
    assert t.user_id == "68c0f5ae-f857-408f-a9d6-f511df0f8ae8"
    assert "oa_rrc" not in repr(t) and "1if5" not in repr(t)
    refreshed = Token.from_response(
        {
            "access_token": "oa_new",
            "expires_in": 3600,
            "token_type": "bearer",
            "scope": "user.account:read user.profile:read",
            "user_id": t.user_id,
        },
        obtained_at=5000.0,
        previous=t,
    )
    assert refreshed.refresh_token == "1if5j2aaverj80tx2nvvvutq"
    rotated = Token.from_response({"access_token": "oa_n2", "expires_in": 60, "refresh_token": "r2"}, 6000.0, refreshed)
    assert rotated.refresh_token == "r2" and rotated.scopes == refreshed.scopes


@pytest.mark.parametrize(
    ("lifetime", "left", "due"),
    [
        (3600, 61, False),
        (3600, 59, True),
        (30, 11, False),
        (30, 9.9, True),
        (3, 1.1, False),
        (3, 0.9, True),
        (3600, -5, True),
    ],
)
def test_refresh_margin_is_min_60s_or_a_third(lifetime: float, left: float, due: bool) -> None:
    t = Token("oa_x", "bearer", expires_at=1000.0 + lifetime, obtained_at=1000.0)
    assert t.needs_refresh(now=1000.0 + lifetime - left) is due


def test_redact_shows_only_a_prefix() -> None:
    assert redact("oa_rrcly8rsusfc1e5sdgxzv8uh") == "oa_rrc…"
    assert redact("abc") == "…" and redact(None) == "-"


@pytest.mark.parametrize("expires_in", ["3600.5", "1e3", "-5", "soon", True, [3600], float("inf")])
def test_unusable_expires_in_is_a_clear_error(expires_in: object) -> None:
    from zephr_desktop.errors import TokenEndpointError
    from zephr_desktop.oauth import check_token_response

    body = {"access_token": "oa_x", "token_type": "bearer", "expires_in": expires_in}
    with pytest.raises(TokenEndpointError, match="unusable expires_in"):
        check_token_response(body, "The token endpoint https://t.example.com/token")


GOOD = {
    "access_token": "oa_abc",
    "token_type": "bearer",
    "expires_in": 3600,
    "refresh_token": "r1",
    "scope": "user.account:read, user.profile:read",
    "user_id": "68c0f5ae",
}

BAD_FIELDS: list[tuple[str, object, str]] = [
    ("access_token", "oa_\x1b[2Jx", "characters no bearer token has"),
    ("access_token", "oa_x\r\nX-Evil: 1", "characters no bearer token has"),
    ("access_token", "oa x", "characters no bearer token has"),
    ("access_token", "oa_x==y", "characters no bearer token has"),
    ("access_token", "é" * 10, "characters no bearer token has"),
    ("access_token", "a" * 8193, "8193 characters long"),
    ("access_token", ["oa_x"], "a list, not a string"),
    ("refresh_token", "r\n1", "characters no bearer token has"),
    ("refresh_token", 7, "a number, not a string"),
    ("token_type", 1, "a number, not a string"),
    ("expires_in", 1e300, "more than a year"),
    ("expires_in", 365 * 86400 + 1, "more than a year"),
    ("expires_in", "99999999999", "more than a year"),
    ("expires_in", float("nan"), "not a number of seconds from 0 up"),
    ("expires_in", float("-inf"), "not a number of seconds from 0 up"),
    ("expires_in", -1, "not a number of seconds from 0 up"),
    ("expires_in", False, "not a number of seconds"),
    ("expires_in", {"s": 1}, "not a number of seconds"),
    ("scope", 5, "a number, not a string or a list of strings"),
    ("scope", ["a", 5], "a list, not a string or a list of strings"),
    ("scope", "a\x1b[2J", "characters outside RFC 6749 scope tokens"),
    ("scope", "a\tb", "characters outside RFC 6749 scope tokens"),
    ("scope", 'a"b', "characters outside RFC 6749 scope tokens"),
    ("scope", ["a b"], "characters outside RFC 6749 scope tokens"),
    ("scope", "s" * 5000, "over 4096 characters"),
    ("user_id", "\x1b[31mroot", "control characters"),
    ("user_id", "joe\nadmin", "control characters"),
    ("user_id", "joe\u202eadmin", "control characters"),
    ("user_id", "joe\u2028admin", "control characters"),
    ("user_id", "u" * 257, "257 characters long"),
    ("user_id", ["joe"], "a list, not a string"),
    ("user_id", True, "true/false, not a string"),
]


@pytest.mark.parametrize(("name", "value", "words"), BAD_FIELDS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_FIELDS)])
def test_every_field_of_a_token_response_is_checked(name: str, value: object, words: str) -> None:
    from zephr_desktop.errors import TokenEndpointError
    from zephr_desktop.oauth import check_token_response

    with pytest.raises(TokenEndpointError) as info:
        Token.from_response({**GOOD, name: value}, 1000.0, source="The token endpoint https://t.example.com/t")
    message = str(info.value)
    assert f"unusable {name} (" in message and words in message and "nothing was stored" in message, message
    assert message.isprintable(), message
    if name.endswith("_token") and isinstance(value, str):
        assert value not in message and value[:4] not in message.replace("access_token", ""), message
    with pytest.raises(TokenEndpointError):
        check_token_response({**GOOD, name: value})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"scope": ["openid", "offline_access"]}, ("openid", "offline_access")),
        ({"scope": "a b,c"}, ("a", "b", "c")),
        ({"expires_in": 0}, 1000.0),
        ({"expires_in": 59.5}, 1059.5),
        ({"expires_in": "3600"}, 4600.0),
        ({"expires_in": None}, None),
        ({"token_type": "Bearer"}, "Bearer"),
        ({"token_type": None}, "bearer"),
        ({"user_id": 42}, "42"),
        ({"user_id": "Zoë Æsir"}, "Zoë Æsir"),
        ({"user_id": ""}, None),
        ({"refresh_token": ""}, None),
        ({"access_token": "eyJ.abc-_~+/=="}, "eyJ.abc-_~+/=="),
        ({"unknown": "\x1b[2J"}, None),
    ],
)
def test_valid_fields_are_taken(fields: dict[str, object], expected: object) -> None:
    token = Token.from_response({**GOOD, **fields}, 1000.0)
    (name,) = fields
    got = {
        "scope": token.scopes,
        "expires_in": token.expires_at,
        "token_type": token.token_type,
        "user_id": token.user_id,
        "refresh_token": token.refresh_token,
        "access_token": token.access_token,
    }.get(name)
    assert got == expected


def test_printable_escapes_control_characters_only() -> None:
    from zephr_desktop.oauth import printable

    assert printable("Zoë Æsir, 68c0f5ae") == "Zoë Æsir, 68c0f5ae"
    assert printable("\x1b[2Jroot\r\n\u202e") == "\\x1b[2Jroot\\r\\n\\u202e"
