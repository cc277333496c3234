"""The demo leaves the user's things alone: it runs on a private config and data dir, removed when it ends.

With a person's real profiles.toml, secret store and keyring in place, the demo is run, signed in
and closed (and once killed); then the user's files are compared byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO, GuiApp
from test_gui import consent_sign_in, report_failure, wait_token

from zephr_desktop.config import save_profile
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.secret_store import FileBackend
from zephr_desktop.store import TokenStore

pytestmark = pytest.mark.gui

DEMO_PREFIX = "zephr-desktop-demo-"


@pytest.fixture
def tmpdir_for_app(tmp_path: Path) -> Path:
    path = tmp_path / "tmpdir"
    path.mkdir()
    return path


@pytest.fixture
def gui(tmp_path: Path, tmpdir_for_app: Path, request: pytest.FixtureRequest) -> Iterator[GuiApp]:
    # The app's TMPDIR is the test's own, so the demo's private dirs can be watched (and nobody else's seen).
    with GuiApp(tmp_path / "gui", timeout=240, env={"TMPDIR": str(tmpdir_for_app)}) as app:
        yield app
        report_failure(app, request)


def seed_user_files(gui: GuiApp) -> None:
    """A person's real setup: two profiles (one of them called demo), secrets in the file store, a token."""
    work = Profile.create(name="work", site_url="https://work.example.com", client_id="work-client")
    save_profile(work, make_default=True, path=gui.config_path)
    demo = Profile.create(name="demo", site_url="https://demo.example.com", client_id="their-demo-client")
    save_profile(demo, path=gui.config_path)
    secrets = FileBackend(gui.data_dir / "secrets.json")
    store = TokenStore(directory=gui.data_dir, secrets=secrets, notice=lambda _m: None)
    store.set_client_secret("work", "work-secret-value")
    store.set_client_secret("demo", "their-demo-secret")
    store.save(
        work,
        Token(
            access_token="work-access",
            token_type="bearer",
            expires_at=4_000_000_000.0,
            obtained_at=1_700_000_000.0,
            scopes=("user.account:read",),
            user_id="u-1",
            refresh_token="work-refresh",
        ),
    )
    (gui.data_dir / ".file-secret-store-noted").touch()


def user_files(gui: GuiApp, keyring: Path) -> dict[str, bytes]:
    """Every file of the user's config and data dirs, and the keyring's, by path."""
    files = {}
    for root in (gui.config_path.parent, gui.data_dir):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    if keyring.exists():
        files[str(keyring)] = keyring.read_bytes()
    return files


def demo_dirs(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.glob(f"{DEMO_PREFIX}*"))


def demo_sign_in(gui: GuiApp) -> str:
    """Start the demo and sign in through its windows; returns the token the app shows."""
    gui.launch(demo=True)
    gui.press("sign-in")
    consent_sign_in(gui)
    return wait_token(gui)


def demo_dir_holding(tmpdir: Path, token: str) -> Path:
    """The running demo's private dir, which holds the token it got."""
    sessions = demo_dirs(tmpdir)
    assert len(sessions) == 1, sessions
    stored = json.loads((sessions[0] / "data" / "tokens" / "demo.json").read_text())
    assert stored["access_token"] == token
    return sessions[0]


def test_the_demo_never_writes_the_users_profiles_secrets_or_keyring(gui: GuiApp, tmpdir_for_app: Path) -> None:
    keyring = gui.tmp / "keyring.json"
    seed_user_files(gui)
    keyring.write_text(json.dumps({"zephr-desktop\u0000other": "kept-in-the-keyring"}))
    before = user_files(gui, keyring)
    assert str(gui.config_path) in before and str(gui.data_dir / "secrets.json") in before

    # 1. No usable keyring (secrets in the file store): sign in, then close the window.
    token = demo_sign_in(gui)
    assert user_files(gui, keyring) == before  # not even while it runs
    session = demo_dir_holding(tmpdir_for_app, token)
    gui.close_window(gui.main_window())
    assert gui.wait_exit() == 0
    assert user_files(gui, keyring) == before
    assert not session.exists() and demo_dirs(tmpdir_for_app) == []

    # 2. A usable keyring this time; sign in, then the demo is killed (SIGKILL: no clean-up runs).
    gui.extra_env.update(
        PYTHON_KEYRING_BACKEND="support.file_keyring.FileKeyring",
        ZEPHR_TEST_KEYRING_FILE=str(keyring),
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
    )
    token = demo_sign_in(gui)
    killed = demo_dir_holding(tmpdir_for_app, token)
    assert gui.app is not None
    os.killpg(gui.app.pid, signal.SIGKILL)
    gui.app.wait(10)
    assert user_files(gui, keyring) == before  # nothing was ever written there, so nothing to undo
    assert demo_dirs(tmpdir_for_app) == [killed]  # its private dir is all it left

    # 3. The next demo removes what the killed one left, and cleans up after itself.
    gui.launch(demo=True)
    live = demo_dirs(tmpdir_for_app)
    assert killed not in live and len(live) == 1
    gui.close_window(gui.main_window())
    assert gui.wait_exit() == 0
    assert demo_dirs(tmpdir_for_app) == []
    assert user_files(gui, keyring) == before


def test_a_running_demo_keeps_its_dir_while_another_demo_starts(gui: GuiApp, tmpdir_for_app: Path) -> None:
    """The stale-dir clean-up takes only dirs whose demo is gone, never a running demo's."""
    gui.launch(demo=True)
    running = demo_dirs(tmpdir_for_app)
    assert len(running) == 1
    second = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; import sys;"
            "from zephr_desktop.gui.demo import remove_stale_demo_dirs;"
            "print(len(remove_stale_demo_dirs(Path(sys.argv[1]))))",
            str(tmpdir_for_app),
        ],
        env={**gui.env(), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "0"
    assert demo_dirs(tmpdir_for_app) == running
    assert gui.app is not None and gui.app.poll() is None and gui.main_window()  # and the demo carries on
