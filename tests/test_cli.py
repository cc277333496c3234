"""The CLI's own contract: profile commands, usage errors, the sandbox command, stdout for data only.

Commands run in this process (``call``); a child process where the process boundary is the point."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.cli import call, run

SITE = ("--site", "https://news.example.com", "--client-id", "news-client")


def test_profile_lifecycle(child_env: dict[str, str]) -> None:
    add = call(child_env, "profile", "add", "news", *SITE, "--client-secret-stdin", stdin="s3cret-value\n")
    assert add.code == 0 and add.out == ""
    assert "http://127.0.0.1:8765/callback" in add.err  # tells which redirect URI to register
    assert call(child_env, "profile", "add", "stage", *SITE, "--scope", "user.profile:read").code == 0
    listed = call(child_env, "profile", "list")
    assert listed.out.splitlines() == ["* news\thttps://news.example.com", "  stage\thttps://news.example.com"]
    shown = json.loads(call(child_env, "profile", "show", "news").out)
    assert shown["client_id"] == "news-client" and shown["client_secret"] == "stored"
    assert shown["token_url"] == "https://console.zephr.com/zephr/oauth2/token"
    assert "s3cret-value" not in json.dumps(shown)
    assert json.loads(call(child_env, "profile", "show", "stage").out)["client_secret"] == "not set"
    assert call(child_env, "profile", "use", "stage").code == 0
    assert call(child_env, "profile", "list").out.startswith("  news")
    assert call(child_env, "profile", "remove", "stage").code == 0
    assert call(child_env, "profile", "list").out.splitlines() == ["  news\thttps://news.example.com"]
    missing = call(child_env, "profile", "show", "ghost")
    assert missing.code == 1 and "No profile named 'ghost'" in missing.err


def test_profile_add_rejects_bad_input_without_touching_the_file(child_env: dict[str, str]) -> None:
    assert call(child_env, "profile", "add", "news", *SITE).code == 0
    before = call(child_env, "profile", "show", "news").out
    bad = call(child_env, "profile", "add", "news", "--site", "http://news.example.com", "--client-id", "x")
    assert bad.code == 1 and "field 'site_url'" in bad.err and "https" in bad.err
    bad = call(child_env, "profile", "add", "news", *SITE, "--redirect-uri", "http://0.0.0.0:1/cb")
    assert bad.code == 1 and "field 'redirect_uri'" in bad.err
    assert call(child_env, "profile", "show", "news").out == before


def test_usage_errors_exit_2(child_env: dict[str, str]) -> None:
    for args in (("nonsense",), ("profile",), ("api", "everything"), ("login", "--timeout", "soon")):
        r = call(child_env, *args)
        assert r.code == 2, args
        assert "usage:" in r.err and r.out == ""


def test_exit_codes_reach_the_shell(child_env: dict[str, str]) -> None:
    assert run(child_env, "--version").code == 0
    failed = run(child_env, "profile", "show", "ghost")
    assert failed.code == 1 and failed.err.startswith("zephr-desktop: ") and "Traceback" not in failed.err
    usage = run(child_env, "nonsense")
    assert usage.code == 2 and "usage:" in usage.err and usage.out == ""


def test_help_and_version(child_env: dict[str, str]) -> None:
    r = call(child_env, "--help")
    assert r.code == 0
    for command in ("profile", "login", "token", "status", "refresh", "logout", "api", "sandbox", "gui"):
        assert command in r.out
    assert call(child_env, "--version").out.startswith("zephr-desktop ")


def test_sandbox_command_serves_until_interrupted(child_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop", "sandbox", "--port", "0", "--expires-in", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert "http://127.0.0.1:" in banner, banner
        url = banner.split("http://", 1)[1].split()[0]
        import requests

        config = requests.get(f"http://{url}/zephr/oauth2/config", timeout=5)
        assert config.status_code == 200 and config.headers["Content-Type"].startswith("application/json")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err and out == ""


def test_sandbox_refuses_a_non_loopback_host(child_env: dict[str, str]) -> None:
    r = call(child_env, "sandbox", "--host", "0.0.0.0")
    assert r.code != 0 and "loopback" in r.err


def test_verbose_goes_after_any_command_too(child_env: dict[str, str]) -> None:
    for args in (("status", "--verbose"), ("profile", "list", "-v"), ("-v", "profile", "list")):
        r = call(child_env, *args)
        assert r.code in (0, 1) and "usage:" not in r.err, args


def test_unwritable_data_dir_is_one_clear_line(child_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {**child_env, "XDG_DATA_HOME": str(blocker)}
    r = call(env, "profile", "add", "news", *SITE, "--client-secret-stdin", stdin="s3cret-value\n")
    assert r.code == 1 and "Traceback" not in r.err
    line = [x for x in r.err.splitlines() if x.startswith("zephr-desktop: ")][-1]
    assert "not-a-dir" in line and "permissions" in line
    assert "s3cret-value" not in r.err


def test_login_opens_the_system_browser_by_default(child_env: dict[str, str], sandbox: Any, tmp_path: Path) -> None:
    import shlex

    opened = tmp_path / "opened.txt"
    recorder = "import sys; open(sys.argv[2], 'w').write(sys.argv[1])"
    env = {**child_env, "BROWSER": f"{sys.executable} -c {shlex.quote(recorder)} %s {shlex.quote(str(opened))}"}
    site = ("--site", sandbox.url, "--token-url", sandbox.token_url, "--client-id", "sandbox-client")
    assert call(env, "profile", "add", "sb", *site, "--redirect-uri", "http://127.0.0.1:0/callback").code == 0
    r = run(env, "login", "--timeout", "1")
    assert r.code == 1 and r.out == ""  # no URL on stdout: that is --no-browser's
    assert opened.read_text().startswith(f"{sandbox.url}/zephr/oauth2?")


def test_a_call_in_this_process_leaves_it_as_it_was(child_env: dict[str, str]) -> None:
    root = logging.getLogger()
    handlers, level, environ = root.handlers[:], root.level, dict(os.environ)
    added = call({**child_env, "ZEPHR_CLIENT_SECRET": "s3cret-value"}, "profile", "add", "news", *SITE)
    assert added.code == 0 and "s3cret-value" not in added.err
    assert json.loads(call(child_env, "profile", "show", "news").out)["client_secret"] == "stored"
    assert call(child_env, "--help").code == 0 and call(child_env, "--no-such-flag").code == 2  # SystemExit
    assert dict(os.environ) == environ and root.handlers == handlers and root.level == level
