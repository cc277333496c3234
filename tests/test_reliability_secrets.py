"""Reliability, items 6 and 8: secrets stay secret (logs, files, permissions) and stay where they belong
(the keyring when there is one, the 0600 file when not, nothing lost when switching).

The suite-wide part of item 6 is the secrets_scan plugin (tests/support/secrets_scan.py): every
test's logs, CLI stderr and result pages are scanned for every sandbox secret at session end.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import evidence
from support.cli import Result, run
from support.secrets_scan import MIN_LENGTH, PREFIX_OK, scan
from support.signin import account_status, cli_add_profile, cli_login, error_line

from zephr_desktop.sandbox import DEFAULT_CLIENT_SECRET, Sandbox

NOTICE = "no system keyring is available"


def secrets_of(sandbox: Sandbox) -> dict[str, str]:
    """Every secret the sandbox has minted or received so far: value -> kind."""
    return {value: kind for kind, value in sandbox.known_secrets}


def keyring_env(env: dict[str, str], ring: Path) -> dict[str, str]:
    """A child environment with a usable keyring (support.file_keyring, a JSON file standing in for the OS one)."""
    return {**env, "PYTHON_KEYRING_BACKEND": "support.file_keyring.FileKeyring", "ZEPHR_TEST_KEYRING_FILE": str(ring)}


def app_files(env: dict[str, str]) -> dict[str, str]:
    """Every file the app wrote under its config and data dirs, by path relative to them."""
    files: dict[str, str] = {}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        top = Path(env[var])
        for path in top.rglob("*") if top.exists() else ():
            if path.is_file():
                files[f"{var}/{path.relative_to(top)}"] = path.read_text("utf-8", "replace")
    return files


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


# -- item 6 -----------------------------------------------------------------------------------


@pytest.mark.reliability("secrets-scan")
def test_the_scan_finds_a_planted_secret_and_allows_a_short_prefix() -> None:
    secret = "oa_" + "q7" * 12
    texts = [
        ("redacted", f"received access token {secret[:6]}…"),
        ("prefix of 8", f"token {secret[:PREFIX_OK]}…"),
        ("prefix of 9", f"token {secret[: PREFIX_OK + 1]}"),
        ("whole", f"Authorization: Bearer {secret}\nnext line"),
        ("middle", f"x{secret[5:20]}x"),
    ]
    hits = scan(texts, {secret: "access_token", "short": "code"})
    assert [h.source for h in hits] == ["prefix of 9", "whole", "middle"]
    for hit in hits:
        assert secret not in hit.line and secret[: PREFIX_OK + 1] not in hit.shown, "the report repeats the secret"
    assert len("short") < MIN_LENGTH  # too short to scan for: it would match by chance


LEAKY_TEST = """
import logging

from zephr_desktop.sandbox import DEFAULT_PASSWORD
from zephr_desktop.sandbox.state import SandboxState


def test_signs_in() -> None:
    session = SandboxState().sign_in("joe@example.com", DEFAULT_PASSWORD)
    assert session
    logging.getLogger("zephr_desktop.demo").warning("signed in: %s", session{cut})
"""


@pytest.mark.reliability("secrets-scan")
def test_the_plugin_fails_a_session_whose_log_holds_a_sandbox_secret(child_env: dict[str, str], tmp_path: Path) -> None:
    outcomes = {}
    for name, cut in (("leaky", ""), ("redacted", f"[:{PREFIX_OK}]")):
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "conftest.py").write_text('pytest_plugins = ["support.secrets_scan"]\n')
        (run_dir / "test_leak.py").write_text(LEAKY_TEST.format(cut=cut))
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leak.py"],
            cwd=run_dir,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=110,
        )
        outcomes[name] = (proc.returncode, proc.stdout)
    code, out = outcomes["leaky"]
    assert code == pytest.ExitCode.TESTS_FAILED and "1 passed" in out, out
    assert "checked for 1 secrets: 1 leak(s)" in out and "session " in out, out
    code, out = outcomes["redacted"]
    assert code == pytest.ExitCode.OK and "checked for 1 secrets: 0 leak(s)" in out, out
    evidence.record(runs=len(outcomes), leaky_exit=int(outcomes["leaky"][0]), redacted_exit=int(code))


@pytest.mark.reliability("secrets-scan")
def test_a_verbose_cli_session_logs_every_step_and_no_secret(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    sandbox.settings.rotate_refresh_tokens = True
    results: dict[str, Result] = {}
    results["profile add"] = cli_add_profile(child_env, sandbox.url, sandbox.token_url, via=run)
    results["login"], page, _ = cli_login(child_env)
    for args in (
        ("token",),
        ("status", "--json"),
        ("refresh",),
        ("api", "account"),
        ("api", "profile"),
        ("profile", "show", "demo"),
        ("logout", "--all"),
    ):
        results[" ".join(args)] = run(child_env, *args)
    seen = secrets_of(sandbox)
    failed = {name: r.err for name, r in results.items() if r.code != 0}
    assert not failed, failed
    stderr = "\n".join(r.err for r in results.values())
    for step in (
        "listening on",
        "exchanging code",
        "received access token",
        "refreshing with",
        "refreshed: access",
        "POST /zephr/oauth2/token",
        "GET /blaize/account",
    ):
        assert step in stderr, f"--verbose no longer logs '{step}': the scan would have nothing to look at"
    kinds = set(seen.values())
    assert {"client_secret", "code", "code_verifier", "access_token", "refresh_token"} <= kinds, kinds
    texts = [(f"stderr of {name}", r.err) for name, r in results.items()]
    texts += [(f"stdout of {name}", r.out) for name, r in results.items() if name != "token"]
    texts.append(("listener result page", page.text))
    hits = scan(texts, {v: k for v, k in seen.items() if len(v) >= MIN_LENGTH})
    assert not hits, [f"{h.kind} {h.shown} in {h.source}: {h.line}" for h in hits]
    evidence.record(commands=len(results), secrets=len(seen), stderr_lines=stderr.count("\n") + 1, hits=len(hits))


@pytest.mark.reliability("secrets-scan")
@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask 022", "umask 000"])
def test_files_are_private_and_loosened_ones_are_tightened(
    sandbox: Sandbox, child_env: dict[str, str], umask: int
) -> None:
    old_umask = os.umask(umask)  # the children inherit it: a permissive one must not matter
    try:
        cli_add_profile(child_env, sandbox.url, sandbox.token_url, via=run)
        assert cli_login(child_env).result.code == 0
        assert run(child_env, "refresh").code == 0
    finally:
        os.umask(old_umask)
    config = Path(child_env["XDG_CONFIG_HOME"]) / "zephr-desktop"
    data = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop"
    expected = {
        config: "0o700",
        config / "profiles.toml": "0o600",
        data: "0o700",
        data / "tokens": "0o700",
        data / "tokens" / "demo.json": "0o600",
        data / "secrets.json": "0o600",
        data / "locks": "0o700",
    }
    actual = {path: mode(path) for path in expected}
    assert actual == expected, {str(p.relative_to(p.parents[2])): m for p, m in actual.items() if m != expected[p]}

    token_file, secrets_file = data / "tokens" / "demo.json", data / "secrets.json"
    os.chmod(token_file, 0o644)
    os.chmod(secrets_file, 0o640)
    os.chmod(data, 0o755)
    printed = run(child_env, "token")
    assert printed.code == 0 and printed.out.strip()
    warned = f"{token_file} was readable by other users (mode 644); it is now 0600"
    assert warned in printed.err, f"`token` did not tighten and report the loosened token file; stderr: {printed.err!r}"
    assert mode(token_file) == "0o600"
    refreshed = run(child_env, "refresh")
    assert refreshed.code == 0, refreshed.err
    warned = f"{secrets_file} was readable by other users (mode 640); it is now 0600"
    assert warned in refreshed.err, f"`refresh` did not tighten and report secrets.json; stderr: {refreshed.err!r}"
    assert (mode(secrets_file), mode(data)) == ("0o600", "0o700")
    evidence.record(umask=f"{umask:03o}", checked=len(expected), tightened=3)


# -- item 8 -----------------------------------------------------------------------------------


@pytest.mark.reliability("secret-storage")
def test_with_a_keyring_the_secrets_go_there_and_not_to_disk(
    sandbox: Sandbox, child_env: dict[str, str], tmp_path: Path
) -> None:
    env = keyring_env(child_env, tmp_path / "ring.json")
    added = cli_add_profile(env, sandbox.url, sandbox.token_url, via=run)
    results = [added, cli_login(env).result, run(env, "refresh"), run(env, "token")]
    seen = secrets_of(sandbox)
    assert all(r.code == 0 for r in results), [r.err for r in results]
    assert not any(NOTICE in r.err for r in results), "the file-fallback notice appeared although a keyring works"
    ring = json.loads((tmp_path / "ring.json").read_text())
    refresh_tokens = [v for v, kind in seen.items() if kind == "refresh_token"]
    assert DEFAULT_CLIENT_SECRET in ring.values()
    assert sandbox.issued[-1].get("refresh_token", refresh_tokens[0]) in ring.values()
    files = app_files(env)
    assert not any(name.endswith("secrets.json") for name in files), sorted(files)
    data = Path(env["XDG_DATA_HOME"]) / "zephr-desktop"
    assert mode(data) == "0o700", f"the data dir is {mode(data)} when a keyring holds the secrets"
    for secret in (DEFAULT_CLIENT_SECRET, *refresh_tokens):
        holders = [name for name, text in files.items() if secret in text]
        assert not holders, f"a long-lived secret was written to disk although a keyring is in use: {holders}"
    evidence.record(store="keyring", commands=len(results), secrets_in_keyring=len(ring), files_checked=len(files))


@pytest.mark.reliability("secret-storage")
def test_without_a_keyring_the_0600_file_works_and_says_so_once(sandbox: Sandbox, child_env: dict[str, str]) -> None:
    results = [cli_add_profile(child_env, sandbox.url, sandbox.token_url, via=run), cli_login(child_env).result]
    results += [run(child_env, *args) for args in (("token",), ("refresh",), ("status",), ("api", "account"))]
    results.append(cli_login(child_env).result)
    assert all(r.code == 0 for r in results), [r.err for r in results]
    notices = [r.err.count(NOTICE) for r in results]
    assert notices[0] == 1 and sum(notices) == 1, f"the notice should come once, with the first command: {notices}"
    secrets_file = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "secrets.json"
    assert mode(secrets_file) == "0o600"
    stored = json.loads(secrets_file.read_text())
    assert DEFAULT_CLIENT_SECRET in stored.values()
    assert len([k for k in stored if "/refresh_token/" in k]) == 1, "old refresh tokens were not cleaned up"
    evidence.record(store="file", commands=len(results), notices=sum(notices))


@pytest.mark.reliability("secret-storage")
def test_switching_between_file_and_keyring_loses_nothing(
    sandbox: Sandbox, child_env: dict[str, str], tmp_path: Path
) -> None:
    with_ring = keyring_env(child_env, tmp_path / "ring.json")
    secrets_file = Path(child_env["XDG_DATA_HOME"]) / "zephr-desktop" / "secrets.json"
    steps: list[str] = []

    # 1. No keyring: the secret and the refresh token go to the 0600 file.
    cli_add_profile(child_env, sandbox.url, sandbox.token_url, via=run)
    assert cli_login(child_env).result.code == 0
    assert DEFAULT_CLIENT_SECRET in json.loads(secrets_file.read_text()).values()
    steps.append("file: profile add, login")

    # 2. A keyring appears: refresh works with what the file held, and it moves into the keyring.
    moved = run(with_ring, "refresh")
    assert moved.code == 0, moved.err
    assert json.loads(secrets_file.read_text()) == {}, "secrets were copied into the keyring, not moved"
    ring = json.loads((tmp_path / "ring.json").read_text())
    assert DEFAULT_CLIENT_SECRET in ring.values() and len(ring) == 2, ring.keys()
    steps.append("keyring: refresh (secrets moved)")

    # 3. The keyring goes away: the cached token still prints; a refresh says where the secrets are.
    token = run(child_env, "token")
    assert token.code == 0 and token.out.strip() == sandbox.issued[-1]["access_token"]
    line = error_line(run(child_env, "refresh"))
    assert "not in the secret store in use now" in line and "keyring" in line, line
    assert json.loads((tmp_path / "ring.json").read_text()) == ring, "a failed refresh changed the keyring"
    steps.append("file: token ok, refresh explains")

    # 4. The keyring is back: nothing was lost.
    again = run(with_ring, "refresh")
    assert again.code == 0, again.err
    printed = run(with_ring, "token").out.strip()
    assert printed == sandbox.issued[-1]["access_token"] and account_status(sandbox, printed) == 200
    steps.append("keyring: refresh, token ok")
    evidence.record(store="file -> keyring -> file -> keyring", steps=steps)
