"""The ``token`` fast path: same answers as the full CLI, stdlib + platformdirs only, never stale trust."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.cli import run
from support.signin import cli_add_profile, cli_login

from zephr_desktop.fasttoken import cached_token

HEAVY = {
    "authlib",
    "requests",
    "urllib3",
    "keyring",
    "filelock",
    "tomli_w",
    "tomllib",
    "argparse",
    "PyQt6",
    "webview",
    "http",
    "ssl",
    "zephr_desktop.cli",
    "zephr_desktop.config",
    "zephr_desktop.profile",
    "zephr_desktop.urls",
}
PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['zephr-desktop'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('zephr_desktop', run_name='__main__')\n"
    "finally:\n"
    "    print(sorted(m for m in sys.modules if m in HEAVY), file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    "argv", [["token", "--verbose"], ["--verbose", "token"], ["status"], ["token", "extra"], ["token", "-p"], []]
)
def test_anything_but_a_plain_token_call_takes_the_full_path(argv: list[str]) -> None:
    assert cached_token(argv, time.time()) is None


def probe(env: dict[str, str], *args: str) -> tuple[int, str, list[str]]:
    """Run the real entry point and report which heavy modules it imported."""
    code = f"HEAVY = {sorted(HEAVY)!r}\n{PROBE}"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)
    last = proc.stderr.strip().splitlines()[-1]
    return proc.returncode, proc.stdout, eval(last)  # a list literal printed by the probe


def test_fast_path_prints_the_same_token_importing_nothing_heavy(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    issued = sandbox.issued[-1]["access_token"]
    assert run(child_env, "token").out.strip() == issued  # full path: validates, leaves the stamp
    for args in (("token",), ("token", "--profile", "demo"), ("token", "-p", "demo"), ("token", "--profile=demo")):
        code, out, heavy = probe(child_env, *args)
        assert (code, out.strip(), heavy) == (0, issued, []), args


def test_edited_config_is_validated_again(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    assert run(child_env, "token").code == 0
    config = Path(child_env["XDG_CONFIG_HOME"]) / "zephr-desktop" / "profiles.toml"
    config.write_text(config.read_text().replace("scopes = [", "scopes = ['user\"quoted', "))
    code, out, heavy = probe(child_env, "token")
    assert code == 1 and out == "" and "zephr_desktop.config" in heavy


def test_unknown_profile_and_loose_permissions_take_the_full_path(child_env: dict[str, str], sandbox: Any) -> None:
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    assert run(child_env, "token").code == 0
    code, _, heavy = probe(child_env, "token", "--profile", "ghost")
    assert code == 1 and heavy
    token_file = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "tokens" / "demo.json"
    os.chmod(token_file, 0o644)
    result = run(child_env, "token")
    assert result.code == 0 and "readable by other users" in result.err
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_expiring_token_is_refreshed_by_the_full_path(child_env: dict[str, str], sandbox: Any) -> None:
    sandbox.settings.expires_in = 2
    cli_add_profile(child_env, sandbox.url, sandbox.token_url)
    assert cli_login(child_env).result.code == 0
    first = sandbox.issued[-1]["access_token"]
    assert run(child_env, "token").out.strip() == first
    time.sleep(1.5)
    code, out, heavy = probe(child_env, "token")
    assert code == 0 and out.strip() == sandbox.issued[-1]["access_token"] != first
    assert "authlib" in heavy
