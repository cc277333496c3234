"""Reliability, items 7 and 9: transport rules (https, CA bundles, no silent TLS-off, no redirects,
proxies) and RFC 6749 servers (form bodies, client credentials in the body)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import evidence
from support.cli import call, run
from support.proxy import Proxy
from support.signin import (
    account_status,
    add_profile,
    cli_add_profile,
    cli_login,
    edit_keeping_sign_in,
    error_line,
    sign_in,
    stored_token,
)
from support.user import ScriptedUser

from zephr_desktop.config import get_profile, save_profile
from zephr_desktop.profile import with_changes
from zephr_desktop.sandbox import Sandbox, SandboxSettings

# -- https required (also for a hand-edited profiles.toml) -------------------------------------

URL_RULES = [
    # (site_url, token_url, refused field or None)
    ("http://news.example.com", "https://console.example.com/t", "site_url"),
    ("https://news.example.com", "http://console.example.com/zephr/oauth2/token", "token_url"),
    ("HTTP://NEWS.EXAMPLE.COM", "https://console.example.com/t", "site_url"),
    ("http://localhost.evil.example", "https://console.example.com/t", "site_url"),
    ("http://127.0.0.1.nip.io:8780", "https://console.example.com/t", "site_url"),
    ("http://0.0.0.0:8780", "https://console.example.com/t", "site_url"),
    ("https://news.example.com", "http://10.0.0.1/zephr/oauth2/token", "token_url"),
    ("https://news.example.com", "https://console.zephr.com/zephr/oauth2/token", None),
    ("http://127.0.0.1:8780", "http://127.0.0.1:8780/zephr/oauth2/token", None),
    ("http://127.0.0.2:8780", "http://localhost:8780/zephr/oauth2/token", None),
    ("http://[::1]:8780", "http://[::1]:8780/zephr/oauth2/token", None),
]


@pytest.mark.reliability("transport")
@pytest.mark.parametrize(("site", "token_url", "refused"), URL_RULES)
def test_https_is_required_except_on_loopback_even_in_a_hand_edited_file(
    child_env: dict[str, str], site: str, token_url: str, refused: str | None
) -> None:
    config = Path(child_env["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[profiles.demo]\nsite_url = "{site}"\ntoken_url = "{token_url}"\nclient_id = "abc"\n')
    line = error_line(call(child_env, "token"))
    if refused is None:
        assert "No token for profile 'demo'" in line, line  # the file loaded: it only lacks a sign-in
    else:
        assert f"profile 'demo', field '{refused}'" in line and "must use https" in line, line
        assert str(config) in line
    evidence.record(site=site, token_url=token_url, refused=refused or "-")


class _Redirector(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirector(sandbox: Sandbox) -> Iterator[str]:
    """A token URL (loopback http) that answers every request with a 307 to the sandbox's token endpoint."""
    handler = type("Handler", (_Redirector,), {"target": sandbox.token_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/zephr/oauth2/token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.reliability("transport")
def test_a_redirecting_token_endpoint_gets_no_secret(
    sandbox: Sandbox, child_env: dict[str, str], redirector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followed, the redirect would carry the refresh token and client secret wherever it points (http too)."""
    before = sign_in(add_profile(sandbox))
    edit_keeping_sign_in(token_url=redirector)
    requests_before = len(sandbox.token_requests)
    line = error_line(call(child_env, "refresh"))
    assert "redirected (307) to" in line and sandbox.token_url in line and "final address" in line, line
    assert len(sandbox.token_requests) == requests_before, "the token request was sent on to the redirect target"
    assert stored_token() == before
    evidence.record(case="token endpoint redirects", followed=False)


# -- TLS: CA bundles, and no way to switch verification off but the explicit option -------------


@pytest.fixture
def tls_sandbox() -> Iterator[Sandbox]:
    with Sandbox(tls=True, settings=SandboxSettings(loopback_any_port=True)) as sb:
        yield sb


def tls_signed_in(sb: Sandbox, monkeypatch: pytest.MonkeyPatch, **fields: object) -> None:
    assert sb.cert_path
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.cert_path)
    user = ScriptedUser()
    user.http.verify = sb.cert_path
    sign_in(add_profile(sb, **fields), user=user)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")


@pytest.mark.reliability("transport")
@pytest.mark.parametrize("trust", ["profile ca_bundle", "REQUESTS_CA_BUNDLE", "nothing"])
def test_the_public_api_call_uses_the_same_trust(
    tls_sandbox: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, trust: str
) -> None:
    assert tls_sandbox.cert_path
    tls_signed_in(tls_sandbox, monkeypatch, ca_bundle=tls_sandbox.cert_path if trust == "profile ca_bundle" else None)
    env = {**child_env, "REQUESTS_CA_BUNDLE": tls_sandbox.cert_path} if trust == "REQUESTS_CA_BUNDLE" else child_env
    result = call(env, "api", "account")
    if trust == "nothing":
        line = error_line(result)
        assert "TLS verification failed" in line and "/blaize/account" in line and "ca_bundle" in line, line
    else:
        assert result.code == 0, result.err
        assert '"email_address": "joe@example.com"' in result.out
    evidence.record(case=f"api account over https, trusted by {trust}", ok=result.code == 0)


SWITCH_OFF_ATTEMPTS = {
    # (environment, what the refusal says)
    "PYTHONHTTPSVERIFY=0": ({"PYTHONHTTPSVERIFY": "0"}, "TLS verification failed"),
    "empty CA bundle variables": ({"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}, "TLS verification failed"),
    "CURL_CA_BUNDLE=/dev/null": ({"CURL_CA_BUNDLE": "/dev/null"}, "CA certificates to check"),
}


@pytest.mark.reliability("transport")
@pytest.mark.parametrize("attempt", list(SWITCH_OFF_ATTEMPTS))
def test_verification_cannot_be_switched_off_from_the_environment(
    tls_sandbox: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, attempt: str
) -> None:
    tls_signed_in(tls_sandbox, monkeypatch)
    env, words = SWITCH_OFF_ATTEMPTS[attempt]
    line = error_line(run({**child_env, **env}, "refresh"))
    assert words in line, line
    evidence.record(case=f"switch TLS off with {attempt}", switched_off=False)


@pytest.mark.reliability("transport")
def test_insecure_skip_tls_verify_works_and_says_so_loudly_every_time(
    tls_sandbox: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_sandbox.cert_path
    tls_signed_in(tls_sandbox, monkeypatch, ca_bundle=tls_sandbox.cert_path)
    # Then the person gives up on the CA and switches verification off (the profile add flag does the same).
    save_profile(with_changes(get_profile("demo"), ca_bundle=None, insecure_skip_tls_verify=True))
    warning = "TLS certificate verification is OFF for profile 'demo'"
    for args in (("refresh",), ("api", "account")):
        result = run(child_env, *args, verbose=False)
        assert result.code == 0, result.err
        assert warning in result.err, f"`{' '.join(args)}` skipped TLS verification without saying so"
    # A cached token needs no request, so there is nothing to warn about.
    assert warning not in run(child_env, "token", verbose=False).err
    evidence.record(case="insecure_skip_tls_verify", warned_on=["refresh", "api account"])


# -- proxies --------------------------------------------------------------------------------


@pytest.mark.reliability("transport")
def test_http_proxy_is_used_for_the_token_endpoint_and_the_api(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    # The sandbox listens on 127.0.0.1 only: 127.0.0.2 is reachable through the proxy alone.
    site = sandbox.url.replace("127.0.0.1", "127.0.0.2")
    direct = {**child_env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    with Proxy() as proxy:
        env = {**direct, "HTTP_PROXY": proxy.url, "http_proxy": proxy.url}
        cli_add_profile(env, site, f"{site}/zephr/oauth2/token", via=run)
        user = ScriptedUser()
        user.http.proxies = {"http": proxy.url}  # the "browser" uses the proxy too
        login = cli_login(env, user=user).result
        assert login.code == 0, login.err
        assert run(env, "refresh").code == 0
        api = run(env, "api", "account")
        assert api.code == 0, api.err
        seen = proxy.seen
    token_url = f"{site}/zephr/oauth2/token"
    assert seen.count(f"POST {token_url}") == 2, seen  # the code exchange and the refresh
    assert f"GET {site}/blaize/account" in seen, seen
    assert not [s for s in seen if "/callback" in s], "the listener's redirect must not go through the proxy"
    unproxied = error_line(run(direct, "refresh"))
    assert "connection refused" in unproxied, unproxied  # so the proxy really was the only way there
    gone = error_line(run(env, "refresh"))  # the proxy has stopped: its address refuses connections
    assert "The proxy refused or failed" in gone and "HTTP_PROXY" in gone, gone
    evidence.record(case="HTTP_PROXY, plain http token URL", through_proxy=len(seen))


@pytest.mark.reliability("transport")
def test_https_proxy_tunnels_the_token_request(
    tls_sandbox: Sandbox, child_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_sandbox.cert_path
    tls_signed_in(tls_sandbox, monkeypatch, ca_bundle=tls_sandbox.cert_path)
    with Proxy() as proxy:
        env = {**child_env, "HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        result = run(env, "refresh")
        assert result.code == 0, result.err
        seen = proxy.seen
    assert seen == [f"CONNECT 127.0.0.1:{tls_sandbox.port}"], seen
    evidence.record(case="HTTPS_PROXY, CONNECT tunnel, certificate still checked", through_proxy=len(seen))


# -- item 9: RFC 6749 servers ---------------------------------------------------------------------


@pytest.mark.reliability("rfc6749")
def test_form_bodies_and_body_client_auth_against_an_rfc_server(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    sandbox.settings.mode = "rfc"
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, "--token-format", "form", "--client-auth", "body")
    login = cli_login(child_env).result
    assert login.code == 0, login.err
    assert call(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]
    assert call(child_env, "refresh").code == 0
    assert call(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]
    assert account_status(sandbox, sandbox.issued[-1]["access_token"]) == 200
    exchange, refresh = sandbox.token_requests
    for req in (exchange, refresh):
        assert req["content_type"] == "application/x-www-form-urlencoded", req
        assert req["authorization"] == "none", "the client secret went in a header, not the body"
    assert exchange["keys"] == ["client_id", "client_secret", "code", "code_verifier", "grant_type", "redirect_uri"]
    assert refresh["keys"] == ["client_id", "client_secret", "grant_type", "refresh_token"]
    evidence.record(case="rfc server, form + body auth", requests=[exchange["keys"], refresh["keys"]])


@pytest.mark.reliability("rfc6749")
def test_a_form_profile_against_zephr_names_the_setting_to_change(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, "--token-format", "form", "--client-auth", "body")
    login, page, _ = cli_login(child_env)
    line = error_line(login)
    assert "invalid_request" in line and "token_format" in line, line
    assert "Sign-in failed" in page.text
    evidence.record(case="form profile against a JSON-only (Zephr) server", message_names="token_format")
