"""The demo (``--demo``): a private config and data dir per run, and a sandbox to sign in to.

``DemoSession`` points the app's paths at a fresh temp dir (and the file secret store) before
anything reads a path, and deletes the dir at the end; ``remove_stale_demo_dirs`` deletes the
dirs of demos that were killed. ``start_demo`` starts the local Zephr sandbox and saves a
profile for it in the demo's own files. Nothing here is used outside a demo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import save_profile
from ..profile import SCOPES, Profile
from ..store import TokenStore

DEMO_PROFILE = "demo"
DEMO_DIR_PREFIX = "zephr-desktop-demo-"
DEMO_LOCK = "session.lock"
DEMO_LIVE = "session.live"
DEMO_UNMARKED_GRACE = 86400.0  # seconds before a demo dir that never got its live mark counts as stale


class DemoSession:
    """A private config and data dir for one demo run, so the demo never writes the user's files.

    The demo's profile, client secret and tokens go to a fresh 0700 temp dir named
    ``zephr-desktop-demo-*``, selected through ``ZEPHR_DESKTOP_CONFIG_DIR`` and
    ``ZEPHR_DESKTOP_DATA_DIR`` before anything reads a path, with the 0600 file secret store
    (``ZEPHR_DESKTOP_SECRET_STORE=file``) instead of the keyring. ``close()`` deletes the dir. A
    demo that is killed leaves only its temp dir; the lock it held dies with it, and the next
    demo's start deletes such dirs.
    """

    def __init__(self, root: Path, lock: Any, saved_env: dict[str, str | None]) -> None:
        self.root = root
        self._lock = lock
        self._saved_env = saved_env

    @classmethod
    def open(cls, parent: Path | None = None) -> DemoSession:
        """Clean up after killed demos, make this run's dir, lock it and point the app's paths at it."""
        import tempfile

        from filelock import FileLock

        parent = parent or Path(tempfile.gettempdir())
        remove_stale_demo_dirs(parent)
        root = Path(tempfile.mkdtemp(prefix=DEMO_DIR_PREFIX, dir=parent))
        lock = FileLock(str(root / DEMO_LOCK), timeout=10)
        lock.acquire()  # held until close() or the process's death
        (root / DEMO_LIVE).touch()  # from now on, a free lock means this run is over
        settings = {
            "ZEPHR_DESKTOP_CONFIG_DIR": str(root / "config"),
            "ZEPHR_DESKTOP_DATA_DIR": str(root / "data"),
            "ZEPHR_DESKTOP_SECRET_STORE": "file",  # never the user's keyring
        }
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        return cls(root, lock, saved)

    def close(self) -> None:
        """Delete the session's dir and put the environment back."""
        import shutil

        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        try:
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            self._lock.release()


def remove_stale_demo_dirs(parent: Path) -> list[Path]:
    """Delete the dirs of demos that were killed: ours, marked live, and with their lock free."""
    import shutil
    import stat
    import time

    from filelock import FileLock, Timeout

    removed: list[Path] = []
    for path in parent.glob(f"{DEMO_DIR_PREFIX}*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            continue
        if not (path / DEMO_LIVE).exists() and time.time() - info.st_mtime < DEMO_UNMARKED_GRACE:
            continue  # a demo between making its dir and locking it (or one killed right there, a day ago)
        lock = FileLock(str(path / DEMO_LOCK), timeout=0)
        try:
            lock.acquire()
        except (Timeout, OSError):
            continue  # a demo that is running now
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            lock.release()
    return removed


def start_demo(store: TokenStore) -> tuple[Any, str, str]:
    """Start the sandbox on loopback and save a profile pointing at it (in the demo's own files)."""
    from ..sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TEST_USERS, Sandbox, SandboxSettings

    sandbox = Sandbox(host="127.0.0.1", port=0, settings=SandboxSettings(loopback_any_port=True)).start()
    profile = Profile.create(
        name=DEMO_PROFILE,
        site_url=sandbox.url,
        token_url=sandbox.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri="http://127.0.0.1:0/callback",
        scopes=list(SCOPES),
    )
    save_profile(profile, make_default=True)
    store.set_client_secret(DEMO_PROFILE, DEFAULT_CLIENT_SECRET)
    email = next(iter(TEST_USERS))
    hint = f"Demo: a local Zephr sandbox. Sign in as {email} with password {TEST_USERS[email]['password']}."
    return sandbox, DEMO_PROFILE, hint


def quiet_notice(_message: str) -> None:
    """The demo's secret store is a temp file on purpose: nothing to tell the user about it."""
