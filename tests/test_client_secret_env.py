"""``ZEPHR_CLIENT_SECRET`` is read once and no child process inherits it (security issue, item 5).

The attack: the secret given in the environment (for CI) used to be inherited by every child
the app starts - the browser (through ``xdg-open`` or ``$BROWSER``), the web engine's processes -
where any extension, crash reporter or ``ps e`` could read it. Now the CLI takes it out of the
environment when it starts and keeps it in memory: the browser sees no trace of it, and the
sign-in still uses it.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from support import evidence
from support.cli import finish, run, start
from support.user import ScriptedUser

from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the fake browser is a shell script")


def fake_browser(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A `$BROWSER` that writes its environment and the URL it was given to files, then exits."""
    script, env_dump, url_file = tmp_path / "browser", tmp_path / "browser-env", tmp_path / "browser-url"
    script.write_text(
        f'#!/bin/sh\nenv > "{env_dump}.tmp"\nmv "{env_dump}.tmp" "{env_dump}"\n'
        f'printf "%s" "$1" > "{url_file}.tmp"\nmv "{url_file}.tmp" "{url_file}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, env_dump, url_file


def wait_for_file(path: Path, timeout: float = 20.0) -> str:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path.name} never appeared: the browser was not started"
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.reliability("client-secret-env")
def test_the_browser_never_sees_the_client_secret_and_the_sign_in_still_uses_it(
    child_env: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    # A profile with no stored secret: the one in the environment is the only way the exchange can work.
    added = run(
        child_env,
        "profile",
        "add",
        "demo",
        "--site",
        sandbox.url,
        "--token-url",
        sandbox.token_url,
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
    )
    assert added.code == 0 and "No client secret stored" in added.err, added.err
    script, env_dump, url_file = fake_browser(tmp_path)
    env = {**child_env, "BROWSER": str(script), "ZEPHR_CLIENT_SECRET": DEFAULT_CLIENT_SECRET}

    proc = start(env, "login", "--browser", "--timeout", "20")
    url = wait_for_file(url_file)
    seen = wait_for_file(env_dump)
    page = ScriptedUser().approve(url)
    result = finish(proc)

    assert "ZEPHR_CLIENT_SECRET" not in seen and DEFAULT_CLIENT_SECRET not in seen
    assert f"BROWSER={script}" in seen  # it is the browser's environment, as the app passed it on
    assert result.code == 0 and page.status_code == 200, result.err
    assert sandbox.token_requests[-1]["authorization"] == "basic"
    assert run(child_env, "token").out.strip() == sandbox.issued[-1]["access_token"]
    evidence.record(
        child="browser", processes=1, inherited=int("ZEPHR_CLIENT_SECRET" in seen), signed_in=int(result.code == 0)
    )


def test_without_the_environment_variable_a_public_client_is_refused(
    child_env: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    """The control: the same sign-in without ZEPHR_CLIENT_SECRET fails, so the one above did use it."""
    run(
        child_env,
        "profile",
        "add",
        "demo",
        "--site",
        sandbox.url,
        "--token-url",
        sandbox.token_url,
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
    )
    script, _, url_file = fake_browser(tmp_path)
    proc = start({**child_env, "BROWSER": str(script)}, "login", "--browser", "--timeout", "20")
    ScriptedUser().approve(wait_for_file(url_file))
    result = finish(proc)
    assert result.code == 1 and "client" in result.err.lower(), result.err
