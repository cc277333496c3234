"""End to end: ``zephr-desktop`` against the sandbox on real loopback ports, with a scripted user who
signs in and answers the consent page. ``login`` runs as a real process (it waits while the user
answers); the other commands run in this process."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from support.cli import Result, call, finish, run
from support.signin import cli_add_profile, cli_login, error_line, start_login
from support.user import ScriptedUser

from zephr_desktop.sandbox import Client


def nothing_stored(env: dict[str, str]) -> bool:
    tokens = Path(env["XDG_DATA_HOME"]) / "zephr-desktop" / "tokens"
    return not tokens.exists() or not any(tokens.iterdir())


def one_line_error(r: Result, *words: str) -> None:
    line = error_line(r)
    for word in words:
        assert word in line, line


def test_sign_in_token_status_api(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    result = cli_login(child_env).result
    assert result.code == 0, result.err
    assert result.out == ""  # stdout carried the URL line alone (read by cli_login())
    issued = sandbox.issued[-1]
    tok = call(child_env, "token")
    assert tok.code == 0 and tok.out == issued["access_token"] + "\n"
    status = json.loads(call(child_env, "status", "--json").out)
    assert status["signed_in"] and not status["expired"] and status["refresh_available"]
    assert status["user_id"] == issued["user_id"]
    assert status["scopes"] == ["user.account:read", "user.profile:read"]
    assert 3500 < status["expires_in"] <= 3600
    dumped = json.dumps(status)
    assert issued["access_token"] not in dumped and issued["refresh_token"] not in dumped
    account = call(child_env, "api", "account")
    assert account.code == 0, account.err
    assert json.loads(account.out)["identifiers"]["email_address"] == "joe@example.com"
    # Zephr's exact token request: JSON, Basic, these keys and no others.
    req = sandbox.token_requests[-1]
    assert req["content_type"].startswith("application/json") and req["authorization"] == "basic"
    assert req["keys"] == ["code", "code_verifier", "grant_type", "redirect_uri"]


@pytest.mark.parametrize("rotate", [False, True])
def test_expiry_then_automatic_refresh(child_env: dict[str, str], sandbox: Any, rotate: bool) -> None:
    sandbox.settings.expires_in = 2
    sandbox.settings.rotate_refresh_tokens = rotate
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    first = sandbox.issued[-1]
    assert call(child_env, "token").out.strip() == first["access_token"]  # still fresh: no refresh
    assert sandbox.stats.get("token_refresh_token", 0) == 0
    for round_ in (1, 2):
        time.sleep(2.1)
        tok = call(child_env, "token")
        assert tok.code == 0, tok.err
        assert tok.out.strip() == sandbox.issued[-1]["access_token"] != first["access_token"]
        assert sandbox.stats["token_refresh_token"] == round_
        assert sandbox.token_requests[-1]["keys"] == ["grant_type", "refresh_token"]
        assert ("refresh_token" in sandbox.issued[-1]) is rotate
    assert sandbox.stats.get("token_authorization_code") == 1  # never a second sign-in


def test_deny_ends_in_one_clear_line(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    result = cli_login(child_env, allow=False).result
    one_line_error(result, "denied", "Allow")
    assert nothing_stored(child_env)


def test_forged_callback_then_the_real_one(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    proc, url = start_login(child_env)
    redirect = ScriptedUser().consent(url)
    base = redirect.split("?")[0]
    forged = requests.get(f"{base}?code=attacker0code0000000000000&state=forged", timeout=5)
    assert forged.status_code == 400
    assert requests.get(redirect, timeout=5).status_code == 200
    result = finish(proc)
    assert result.code == 0, result.err
    assert call(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]


def test_expired_code(child_env: dict[str, str], sandbox: Any) -> None:
    sandbox.settings.code_lifetime = 0.2
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    proc, url = start_login(child_env)
    redirect = ScriptedUser().consent(url)
    time.sleep(0.5)
    requests.get(redirect, timeout=5)
    one_line_error(finish(proc), "invalid_grant", "login")
    assert nothing_stored(child_env)


def test_wrong_client_secret(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, secret="not-the-secret")
    result = cli_login(child_env).result
    one_line_error(result, "client credentials", "Third Party Authentication")
    assert nothing_stored(child_env)
    assert "not-the-secret" not in result.err


def test_paste_the_redirect_url(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    proc, url = start_login(child_env)
    assert proc.stdin is not None
    redirect = ScriptedUser().consent(url)
    proc.stdin.write("this is not it\n" + redirect + "\n")
    proc.stdin.flush()
    result = finish(proc)
    assert result.code == 0, result.err
    assert "not the redirect URL" in result.err  # the wrong paste was explained, then the right one taken
    assert call(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]


def test_wrong_redirect_uri_is_refused_by_zephr_and_times_out_with_a_hint(
    child_env: dict[str, str], sandbox: Any, free_port: int
) -> None:
    sandbox.settings.loopback_any_port = False
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, redirect_uri=f"http://127.0.0.1:{free_port}/callback")
    proc, url = start_login(child_env, timeout=1.5)
    page = requests.get(url, allow_redirects=False, timeout=5)
    assert page.status_code == 400 and "redirect" in page.text.lower()
    one_line_error(finish(proc), "1.5", f"http://127.0.0.1:{free_port}/callback")
    assert nothing_stored(child_env)


def test_registered_fixed_port_redirect(child_env: dict[str, str], sandbox: Any, free_port: int) -> None:
    sandbox.settings.loopback_any_port = False
    uri = f"http://127.0.0.1:{free_port}/callback"
    sandbox.register_client(Client(client_id="fixed", client_secret="s3", redirect_uris=[uri], name="Fixed"))
    added = cli_add_profile(child_env, sandbox.url, sandbox.token_url, name="fixed", client_id="fixed",
                            redirect_uri=uri, secret="s3")  # fmt: skip
    assert uri in added.err  # tells which redirect URI to register
    result, _, url = cli_login(child_env)
    assert result.code == 0, result.err
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{free_port}%2Fcallback" in url


def test_port_in_use(child_env: dict[str, str], sandbox: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cli_add_profile(child_env, sandbox.url, sandbox.token_url, redirect_uri=f"http://127.0.0.1:{port}/callback")
        result = run(child_env, "login", "--no-browser")
    one_line_error(result, str(port), "in use")
    assert result.out == ""  # no URL shown when nothing listens for its answer


def test_sandbox_down(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    proc, url = start_login(child_env)
    redirect = ScriptedUser().consent(url)
    sandbox.stop()
    requests.get(redirect, timeout=5)
    one_line_error(finish(proc), "Cannot reach", sandbox.token_url)
    assert nothing_stored(child_env)


def test_token_without_login_and_malformed_config(child_env: dict[str, str], sandbox: Any) -> None:
    one_line_error(call(child_env, "token"), "No profile yet")
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    one_line_error(call(child_env, "token"), "No token", "login")
    config = Path(child_env["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"
    config.write_text(config.read_text().replace("scopes = [", "scopes = ['user\"quoted', "))
    one_line_error(call(child_env, "token"), str(config), "profile 'demo'", "field 'scopes'")


def test_usage_error_exit_2(child_env: dict[str, str]) -> None:
    r = call(child_env, "login", "--browser", "--no-browser")
    assert r.code == 2 and "not allowed with" in r.err


def test_token_path_imports_only_stdlib_and_platformdirs(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    import subprocess
    import sys

    code = (
        "import sys, zephr_desktop.cli as c; rc = c.main(['token']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'authlib', 'requests', 'keyring', 'PyQt6', 'webview', 'filelock', 'urllib3', 'tomli_w'}); "
        "print(heavy, file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
