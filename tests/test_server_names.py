"""Messages name the right server: Zephr for a Zephr-mode profile; off Zephr (token_format form),
the authorization server or the site by its host, and never Zephr."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.fake_session import FakeTokenEndpoint
from support.signin import cli_add_profile, cli_login, error_line
from support.token_server import TokenServer

from zephr_desktop.errors import ZephrError
from zephr_desktop.login import ensure_fresh_token
from zephr_desktop.oauth import AuthRequest, Token
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import Sandbox
from zephr_desktop.store import TokenStore
from zephr_desktop.token_client import check_answer
from zephr_desktop.zephr_api import get_account

MODES = {
    "zephr": {"token_format": "json"},
    "rfc": {"token_format": "form"},
}


def profile_for(
    mode: str, site: str = "https://news.example.com", token_url: str = "https://auth.example.com/oauth/token"
) -> Profile:
    return Profile.create(name="p", site_url=site, token_url=token_url, client_id="cid", **MODES[mode])


def answer(status: int, body: bytes | dict[str, str], ctype: str = "application/json") -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp.headers["Content-Type"] = status, ctype
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return resp


def token_endpoint(resp: requests.Response) -> Callable[[Profile], str]:
    def provoke(profile: Profile) -> str:
        with pytest.raises(ZephrError) as info:
            check_answer(resp, profile)
        return info.value.message

    return provoke


def callback_error(profile: Profile) -> str:
    with pytest.raises(ZephrError) as info:
        AuthRequest.new(profile).code_from({"error": ["unauthorized_client"]})
    return info.value.message


def no_refresh_token(profile: Profile, tmp_path: Path) -> str:
    store = TokenStore(tmp_path / "data", notice=lambda _: None)
    with store.refresh_lock(profile.name):
        store.save(profile, Token("oa_x", "bearer", 1.0, 0.0))
    with pytest.raises(ZephrError) as info:
        ensure_fresh_token(profile, store=store, session_factory=FakeTokenEndpoint())
    return info.value.message


CASES: list[tuple[str, Callable[..., str], str, bool]] = [
    # (what failed, how to provoke it, the host an RFC-mode message names, whether a Zephr-mode one says Zephr)
    ("invalid_client", token_endpoint(answer(401, {"error": "invalid_client"})), "auth.example.com", True),
    ("a 401 page", token_endpoint(answer(401, b"<html></html>", "text/html")), "auth.example.com", True),
    ("invalid_grant", token_endpoint(answer(400, {"error": "invalid_grant"})), "auth.example.com", True),
    ("5xx", token_endpoint(answer(502, b"<html></html>", "text/html")), "auth.example.com", True),
    ("404 page", token_endpoint(answer(404, b"<html></html>", "text/html")), "auth.example.com", False),
    ("callback error", callback_error, "news.example.com", True),
    ("no refresh token", no_refresh_token, "auth.example.com", True),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("case", "provoke", "host", "says_zephr"), CASES, ids=[c[0] for c in CASES])
def test_token_and_sign_in_messages_name_the_server(
    mode: str, case: str, provoke: Callable[..., str], host: str, says_zephr: bool, tmp_path: Path
) -> None:
    profile = profile_for(mode)
    message = provoke(profile, tmp_path) if provoke is no_refresh_token else provoke(profile)
    if mode == "zephr":
        assert ("Zephr" in message) is says_zephr and "authorization server at" not in message, message
    else:
        assert "Zephr" not in message and "Third Party Authentication" not in message, message
        assert host in message, message


# -- the Public API --------------------------------------------------------------------------------
@pytest.fixture
def site() -> Iterator[TokenServer]:
    with TokenServer() as server:
        yield server


API = [
    (404, "no account on this {zephr}site (127.0.0.1): GET /blaize/account answered 404"),
    (401, "GET /blaize/account on this {zephr}site (127.0.0.1) refused the token (401)"),
    (403, "GET /blaize/account on this {zephr}site (127.0.0.1) needs a scope"),
    (500, "GET /blaize/account on this {zephr}site (127.0.0.1) failed with HTTP 500"),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("status", "words"), API, ids=[str(a[0]) for a in API])
def test_public_api_messages_name_the_site(site: TokenServer, mode: str, status: int, words: str) -> None:
    site.answer(status, {"error": "x"})
    profile = profile_for(mode, site=site.site, token_url=site.url)
    with pytest.raises(ZephrError) as info:
        get_account(profile, Token("oa_x", "bearer", None, 0.0))
    message = info.value.message
    assert words.format(zephr="Zephr " if mode == "zephr" else "") in message, message
    assert ("Zephr" in message) is (mode == "zephr"), message


# -- through the CLI --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(MODES))
def test_a_wrong_secret_names_the_server_through_the_cli(
    sandbox: Sandbox, child_env: dict[str, str], mode: str
) -> None:
    sandbox.settings.mode = "rfc" if mode == "rfc" else "zephr"
    token_format = MODES[mode]["token_format"]
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, "--token-format", token_format, secret="wrong-secret")
    login, page, _ = cli_login(child_env)
    line = error_line(login)
    if mode == "zephr":
        assert "Zephr rejected the client credentials (401 invalid_client" in line, line
        assert "Third Party Authentication screen" in line
    else:
        assert "The authorization server at 127.0.0.1 rejected the client credentials (401 invalid_client" in line
        assert "the client's registration at 127.0.0.1" in line and "Zephr" not in line, line
        assert "Zephr" not in page.text
