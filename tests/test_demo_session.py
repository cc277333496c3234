"""The demo's private dirs: where they point the app, and which leftovers the next demo removes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zephr_desktop.config import load_profiles
from zephr_desktop.gui.demo import DEMO_DIR_PREFIX, DEMO_LIVE, DemoSession, remove_stale_demo_dirs
from zephr_desktop.paths import config_file, data_dir
from zephr_desktop.store import TokenStore

ROOT = Path(__file__).resolve().parents[1]


def test_a_session_points_every_path_at_its_own_dir_and_takes_it_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEPHR_DESKTOP_CONFIG_DIR", str(tmp_path / "mine"))
    user_config = config_file()
    session = DemoSession.open(tmp_path)
    try:
        assert session.root.parent == tmp_path and session.root.name.startswith(DEMO_DIR_PREFIX)
        assert oct(session.root.stat().st_mode & 0o777) == "0o700"
        assert config_file() == session.root / "config" / "profiles.toml"
        assert data_dir() == session.root / "data"
        store = TokenStore(notice=lambda _m: None)
        assert store.secrets.name == "file"  # never the keyring
        store.set_client_secret("demo", "s")
        assert (session.root / "data" / "secrets.json").is_file()
    finally:
        session.close()
    assert not session.root.exists()
    assert config_file() == user_config  # the environment is as it was
    assert "ZEPHR_DESKTOP_DATA_DIR" not in os.environ and "ZEPHR_DESKTOP_SECRET_STORE" not in os.environ
    assert load_profiles().profiles == {}


def make_leftover(parent: Path, name: str, *, live: bool = True, age: float = 0.0) -> Path:
    path = parent / f"{DEMO_DIR_PREFIX}{name}"
    (path / "data" / "tokens").mkdir(parents=True)
    (path / "data" / "tokens" / "demo.json").write_text("{}")
    if live:
        (path / DEMO_LIVE).touch()
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def test_leftovers_of_killed_demos_go_and_nothing_else(tmp_path: Path) -> None:
    killed = make_leftover(tmp_path, "killed")
    starting = make_leftover(tmp_path, "starting", live=False)  # made its dir, not yet locked and marked
    ancient = make_leftover(tmp_path, "ancient", live=False, age=3 * 86400)  # killed right at that moment
    elsewhere = make_leftover(tmp_path / "other", "target")
    (tmp_path / f"{DEMO_DIR_PREFIX}link").symlink_to(elsewhere)
    (tmp_path / f"{DEMO_DIR_PREFIX}file").write_text("not a demo dir")
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()
    (unrelated / DEMO_LIVE).touch()

    removed = remove_stale_demo_dirs(tmp_path)
    assert sorted(removed) == sorted([killed, ancient])
    assert not killed.exists() and not ancient.exists()
    assert starting.exists() and elsewhere.exists() and unrelated.exists()
    assert (tmp_path / f"{DEMO_DIR_PREFIX}link").is_symlink() and (tmp_path / f"{DEMO_DIR_PREFIX}file").is_file()


def test_a_running_demo_in_another_process_is_never_removed(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from zephr_desktop.gui.demo import DemoSession;"
        "s = DemoSession.open(Path(sys.argv[1])); print(s.root, flush=True); sys.stdin.read(); s.close()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        root = Path(proc.stdout.readline().strip())
        assert root.is_dir()
        assert remove_stale_demo_dirs(tmp_path) == []
        assert root.is_dir()
        other = DemoSession.open(tmp_path)  # a second demo starting meanwhile
        try:
            assert root.is_dir() and other.root != root
        finally:
            other.close()
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes the pipes
    # Killed: its lock went with it, so the next clean-up takes its dir.
    assert remove_stale_demo_dirs(tmp_path) == [root]
    assert list(tmp_path.iterdir()) == []
