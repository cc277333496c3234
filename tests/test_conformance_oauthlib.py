"""Conformance: the CLI's RFC mode (token_format form) end to end against oauthlib's server classes,
an authorization server implementation the client shares no code with (the client uses Authlib).

Covered: client_secret_basic with a secret holding '%', '+' and ':', client_secret_post, PKCE
(S256, and a server that requires it), refresh with rotation, a wrong secret, denied consent,
an expired code and a replayed one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit, urlunsplit

import pytest
import requests
from support import evidence, secrets_scan
from support.cli import Result, call, finish
from support.oauthlib_server import OAuthlibServer
from support.signin import cli_add_profile, error_line, start_login, stored_files

CLIENT_ID = "conformance-app"
SECRET = "100%+real:secret/with=odd chars"


@pytest.fixture
def server() -> Iterator[OAuthlibServer]:
    secrets_scan.register("client_secret", SECRET)
    with OAuthlibServer() as oauthlib_server:
        oauthlib_server.add_client(CLIENT_ID, SECRET)
        yield oauthlib_server


def add_profile(env: dict[str, str], server: OAuthlibServer, *extra: str, secret: str = SECRET) -> None:
    cli_add_profile(env, server.site, server.token_url, "--token-format", "form", *extra, client_id=CLIENT_ID,
                    secret=secret)  # fmt: skip


def login(env: dict[str, str], deliver: Callable[[str], str] = lambda location: location) -> tuple[Result, str]:
    """`login --no-browser`; the test is the browser: it follows the authorize URL and brings the redirect back."""
    proc, url = start_login(env)
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, (answer.status_code, answer.headers)
    location = deliver(answer.headers["Location"])
    for value in parse_qs(urlsplit(location).query).get("code", []):
        secrets_scan.register("code", value)
    page = requests.get(location, timeout=20)
    secrets_scan.collect("listener result page", page.text)
    return finish(proc), location


def issued(server: OAuthlibServer) -> set[str]:
    for token in (*server.store.access_tokens, *server.store.refresh_tokens):
        secrets_scan.register("token", token)
    return set(server.store.access_tokens)


def signed_in_token(env: dict[str, str], server: OAuthlibServer) -> str:
    token = call(env, "token")
    assert token.code == 0, token.err
    assert token.out.strip() in issued(server)
    return token.out.strip()


@pytest.mark.reliability("conformance")
@pytest.mark.parametrize("client_auth", ["basic", "body"])
def test_sign_in_and_refresh_with_rotation(server: OAuthlibServer, child_env: dict[str, str], client_auth: str) -> None:
    add_profile(child_env, server, "--client-auth", client_auth)
    result, _ = login(child_env)
    assert result.code == 0, result.err
    first = signed_in_token(child_env, server)
    assert server.store.codes == {}  # redeemed codes are gone
    refresh_before = set(server.store.refresh_tokens)
    for _ in range(2):  # the second refresh must use the rotated refresh token
        assert call(child_env, "refresh").code == 0
    latest = signed_in_token(child_env, server)
    assert latest != first
    assert not refresh_before & set(server.store.refresh_tokens), "a rotated refresh token is still alive"
    how = "client_secret_basic" if client_auth == "basic" else "client_secret_post"
    assert server.store.client_auth == [how] * 3, server.store.client_auth
    evidence.record(case=f"{how} (secret with %, + and :), PKCE S256, refresh x2 with rotation", ok=True)


@pytest.mark.reliability("conformance")
def test_the_old_refresh_token_is_dead_after_rotation(server: OAuthlibServer, child_env: dict[str, str]) -> None:
    add_profile(child_env, server)
    assert login(child_env)[0].code == 0
    (old,) = server.store.refresh_tokens
    assert call(child_env, "refresh").code == 0
    basic = base64.b64encode(f"{quote_plus(CLIENT_ID)}:{quote_plus(SECRET)}".encode()).decode()
    replay = requests.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": old},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text
    assert call(child_env, "refresh").code == 0  # the app holds the rotated one
    evidence.record(case="old refresh token replayed after rotation", refused=True)


@pytest.mark.reliability("conformance")
def test_pkce_is_s256_and_a_server_that_requires_it_refuses_a_profile_without(
    server: OAuthlibServer, child_env: dict[str, str]
) -> None:
    add_profile(child_env, server)
    seen: dict[str, str] = {}

    def keep(location: str) -> str:
        seen.update({k: v.method or "" for k, v in server.store.codes.items()})
        return location

    assert login(child_env, keep)[0].code == 0
    assert list(seen.values()) == ["S256"]
    add_profile(child_env, server, "--no-pkce")
    result, _ = login(child_env)
    line = error_line(result)
    assert "The authorization server at 127.0.0.1 refused the sign-in: invalid_request" in line, line
    assert "Zephr" not in line
    evidence.record(case="PKCE: S256 sent; a profile without PKCE refused by a server that requires it", ok=True)


def _with_code(code: str) -> Callable[[str], str]:
    def swap(location: str) -> str:
        parts = urlsplit(location)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return urlunsplit(parts._replace(query=urlencode({**query, "code": code})))

    return swap


REFUSALS = ["wrong secret", "denied consent", "expired code", "replayed code"]


@pytest.mark.reliability("conformance")
@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_clear_and_store_nothing(server: OAuthlibServer, child_env: dict[str, str], case: str) -> None:
    add_profile(child_env, server)
    first, location = login(child_env)
    assert first.code == 0, first.err
    token = signed_in_token(child_env, server)
    before = stored_files(child_env)
    deliver: Callable[[str], str] = lambda location: location  # noqa: E731
    if case == "wrong secret":
        add_profile(child_env, server, secret="not+the%20secret")
        before = stored_files(child_env)  # profile add rewrote the secret store; the token file is the same
    elif case == "denied consent":
        server.consent = False
    elif case == "expired code":
        server.store.code_lifetime = 0.0
    else:
        deliver = _with_code(parse_qs(urlsplit(location).query)["code"][0])  # the first sign-in's code again
    result, _ = login(child_env, deliver)
    line = error_line(result)
    expected = {
        "wrong secret": "The authorization server at 127.0.0.1 rejected the client credentials (401 invalid_client",
        "denied consent": "Sign-in was denied on the consent page",
        "expired code": "The authorization server at 127.0.0.1 refused the grant (400 invalid_grant",
        "replayed code": "The authorization server at 127.0.0.1 refused the grant (400 invalid_grant",
    }[case]
    assert expected in line and "Zephr" not in line, line
    assert stored_files(child_env) == before, "a refused sign-in changed what is stored"
    if case != "wrong secret":
        assert call(child_env, "token").out.strip() == token
    evidence.record(case=case, message=line.removeprefix("zephr-desktop: ").replace(server.token_url, "TOKEN_URL"))
