"""Shared fixtures: every test runs with its own config/data dirs and never touches the real ones."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Suite-wide: no secret in any log, stderr or page (secrets_scan); figures for RELIABILITY.md (evidence).
pytest_plugins = ["support.secrets_scan", "support.evidence"]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point platformdirs (XDG) and the app's own overrides at temp dirs; no real keyring."""
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in (
        "ZEPHR_CLIENT_SECRET",
        "ZEPHR_DESKTOP_CONFIG_DIR",
        "ZEPHR_DESKTOP_DATA_DIR",
        "ZEPHR_DESKTOP_SECRET_STORE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def child_env(isolated_dirs: dict[str, str]) -> dict[str, str]:
    """Environment for a ``zephr-desktop`` child process: the same isolated dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEPHR")}
    env.update(isolated_dirs)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS)])
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A running Zephr sandbox on a free loopback port."""
    from zephr_desktop.sandbox import Sandbox, SandboxSettings

    sb = Sandbox(settings=SandboxSettings(loopback_any_port=True)).start()
    try:
        yield sb
    finally:
        sb.stop()
