"""Directories and files no other local user can change (security issue, item 7).

The attack: with umask 000 the app used to create ~/.config, ~/.local and ~/.local/share 0777;
another local user could then swap in their own profiles.toml (a token URL of theirs) and
receive the victim's refresh token and client secret. Now every directory the app creates is
0700 (missing parents too) and every file 0600, and every command refuses - naming the path
and the fix - a config or data file or directory that another user could write or that is not
the user's, as ssh refuses a writable ~/.ssh. The fast path falls back to the full path, which
refuses.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import evidence, secrets_scan
from support.cli import Result, finish, run, start
from support.signin import error_line
from support.user import ScriptedUser

from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and owners")

OTHER_UID = 4321


def home_env(child_env: dict[str, str], home: Path) -> dict[str, str]:
    """A child environment whose platformdirs fall back to a fresh HOME (no XDG_* set)."""
    env = {k: v for k, v in child_env.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    return env


def run_umask0(env: dict[str, str], *args: str, stdin: str = "") -> Result:
    """`zephr-desktop ARGS` in a process whose umask is 000."""
    proc = subprocess.run(
        [sys.executable, "-m", "zephr_desktop", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=lambda: os.umask(0),
    )
    secrets_scan.collect(f"stderr of `zephr-desktop {' '.join(args)}`", proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.reliability("file-permissions")
def test_with_umask_000_every_directory_made_is_0700_and_every_file_0600(
    child_env: dict[str, str], sandbox: Sandbox, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    env = home_env(child_env, home)
    added = run_umask0(
        env,
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
        "--client-secret-stdin",
        stdin=DEFAULT_CLIENT_SECRET + "\n",
    )
    assert added.code == 0, added.err
    proc = subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop", "login", "--no-browser", "--timeout", "20"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: os.umask(0),
    )
    assert proc.stdout is not None
    ScriptedUser().approve(proc.stdout.readline().strip())
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    for args in (("token",), ("refresh",), ("status",), ("token",)):
        assert run_umask0(env, *args).code == 0
    if sys.platform.startswith("linux"):
        installed = run_umask0(env, "desktop-entry", "install")
        assert installed.code == 0, installed.err
    made = sorted(home.rglob("*"))
    assert home / ".config" / "zephr-desktop" / "profiles.toml" in made
    assert home / ".local" / "share" / "zephr-desktop" / "tokens" / "demo.json" in made
    assert home / ".local" / "share" / "zephr-desktop" / "locks" in made
    shared = (home / ".local" / "share" / "applications", home / ".local" / "share" / "icons")

    def expected(path: Path) -> int:
        if path.is_dir():
            return 0o700
        # The menu entry and icons are for the desktop to read (0644 on purpose); everything of the app's is 0600.
        return 0o644 if any(path.is_relative_to(root) for root in shared) else 0o600

    wrong = {
        str(p.relative_to(home)): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in made
        if stat.S_IMODE(p.lstat().st_mode) != expected(p)
    }
    assert wrong == {}, f"made with the wrong mode under umask 000: {wrong}"
    evidence.record(umask="000", made=len(made), wrong_mode=len(wrong))


# -- refusing what another user could have changed -------------------------------------------------
COMMANDS: list[tuple[str, ...]] = [
    ("profile", "add", "news", "--site", "https://news.example.com", "--client-id", "abc", "--client-secret-stdin"),
    ("profile", "list"),
    ("profile", "show", "demo"),
    ("profile", "use", "demo"),
    ("profile", "remove", "demo"),
    ("login", "--no-browser", "--timeout", "5"),
    ("token",),
    ("token", "--profile", "demo"),
    ("status",),
    ("refresh",),
    ("logout",),
    ("api", "account"),
]


def targets(env: dict[str, str]) -> dict[str, Path]:
    config = Path(env["XDG_CONFIG_HOME"]) / "zephr-desktop"
    data = Path(env["XDG_DATA_HOME"]) / "zephr-desktop"
    return {
        "config dir": config,
        "profiles.toml": config / "profiles.toml",
        "data dir": data,
        "tokens dir": data / "tokens",
        "secrets.json": data / "secrets.json",
        "locks dir": data / "locks",
    }


def snapshot(env: dict[str, str]) -> dict[str, tuple[int, int, str]]:
    """Every file and directory under the config and data dirs: mode, owner, content hash."""
    found: dict[str, tuple[int, int, str]] = {}
    for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        root = Path(env[key])
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            found[str(path)] = (st.st_mode, st.st_uid, digest)
    return found


def signed_in(env: dict[str, str], sb: Sandbox) -> str:
    """A profile signed in through the CLI, with the fast path's stamp written; returns the token."""
    r = run(
        env,
        "profile",
        "add",
        "demo",
        "--site",
        sb.url,
        "--token-url",
        sb.token_url,
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--client-secret-stdin",
        stdin=DEFAULT_CLIENT_SECRET + "\n",
    )
    assert r.code == 0, r.err
    proc = start(env, "login", "--no-browser", "--timeout", "20")
    assert proc.stdout is not None
    ScriptedUser().approve(proc.stdout.readline().strip())
    assert finish(proc).code == 0
    token = run(env, "token")
    assert token.code == 0
    return token.out.strip()


def all_refuse(env: dict[str, str], path: Path, words: str, case: str) -> None:
    before = snapshot(env)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: (args, run(env, *args, stdin="a-new-secret\n", timeout=30)), COMMANDS))
    for args, result in results:
        line = error_line(result)
        assert str(path) in line and words in line, (args, line)
        assert result.out == "", (args, "stdout carried data")
    assert snapshot(env) == before, "a refused command changed the config or data dirs"
    evidence.record(case=case, commands=len(results), refused=len(results), changed=0)


@pytest.mark.parametrize(("target", "bits"), [
    ("profiles.toml", 0o020), ("config dir", 0o002), ("data dir", 0o020), ("tokens dir", 0o002),
    ("secrets.json", 0o002), ("locks dir", 0o020),
])  # fmt: skip
@pytest.mark.reliability("file-permissions")
def test_every_command_refuses_files_other_users_could_write(
    child_env: dict[str, str], sandbox: Sandbox, target: str, bits: int
) -> None:
    issued = signed_in(child_env, sandbox)
    path = targets(child_env)[target]
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | bits)
    all_refuse(child_env, path, f"`chmod go-w {path}`", f"{target} writable by others ({bits:o})")
    assert sandbox.stats.get("token_refresh_token", 0) == 0
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~bits)  # the fix the message names
    assert run(child_env, "token").out.strip() == issued


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("target", ["profiles.toml", "config dir", "data dir"])
@pytest.mark.reliability("file-permissions")
def test_every_command_refuses_files_that_belong_to_another_user(
    child_env: dict[str, str], sandbox: Sandbox, target: str
) -> None:
    signed_in(child_env, sandbox)
    path = targets(child_env)[target]
    os.chown(path, OTHER_UID, OTHER_UID)
    all_refuse(child_env, path, f"belongs to another user (uid {OTHER_UID})", f"{target} owned by another user")


def test_a_token_file_other_users_could_write_is_refused_on_both_paths(
    child_env: dict[str, str], sandbox: Sandbox
) -> None:
    signed_in(child_env, sandbox)
    token_file = targets(child_env)["tokens dir"] / "demo.json"
    os.chmod(token_file, 0o622)
    for args in (("token",), ("status",), ("api", "account"), ("refresh",)):
        line = error_line(run(child_env, *args))
        assert f"`chmod go-w {token_file}`" in line, line
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o622  # refused, not silently "fixed"
