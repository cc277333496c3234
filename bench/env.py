"""Where the benchmark runs: throwaway XDG dirs, the children's environment, and the machine."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
APP_NAME = "zephr-desktop"
# Variables a child must not inherit: they would point it at real config, a real keyring,
# or change how Python starts (no bytecode cache makes every import compile from source).
_DROPPED_PREFIXES = ("ZEPHR_", "XDG_", "PYTHON_KEYRING", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class Workspace:
    """Throwaway XDG dirs and the environment every child gets, so nothing real is ever touched."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.xdg = {name: root / name.lower() for name in XDG_NAMES}
        for path in self.xdg.values():
            path.mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        """profiles.toml as the children's platformdirs sees it."""
        return self.xdg["XDG_CONFIG_HOME"] / APP_NAME / "profiles.toml"

    @property
    def data_dir(self) -> Path:
        """The children's data dir (token files, the 0600 secret file)."""
        return self.xdg["XDG_DATA_HOME"] / APP_NAME

    def env(self) -> dict[str, str]:
        """The environment of a child: isolated XDG dirs, no keyring, loopback without proxies."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
        env.update({k: str(v) for k, v in self.xdg.items()})
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        if not package_installed():
            # A plain checkout: let the children import the package; every contender pays the same.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return env

    def apply_here(self) -> None:
        """Point this process at the same dirs, so an in-process store can never reach the real ones."""
        # Also what changes how Python starts: every child, the GUI harness's included, caches bytecode
        # as an installed app does (without it, each start would compile the app's modules anew).
        for key in [
            k
            for k in os.environ
            if k.startswith(("ZEPHR_", "PYTHON_KEYRING", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))
        ]:
            del os.environ[key]
        os.environ.update({k: str(v) for k, v in self.xdg.items()})
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def package_installed() -> bool:
    """True when zephr-desktop is installed in this interpreter (e.g. the editable install of scripts/setup)."""
    try:
        importlib.metadata.distribution(APP_NAME)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def console_script() -> Path | None:
    """The ``zephr-desktop`` console script installed beside this interpreter, if any."""
    candidate = Path(sys.executable).parent / APP_NAME
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def has_module(name: str) -> bool:
    """True when ``name`` can be imported here."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """What the figures were measured on (no paths: the doc is committed)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "cores": str(os.cpu_count() or "?"),
        "cpu": _cpu_model(),
        "os": platform.platform(terse=True),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "environment": "virtualenv" if sys.prefix != sys.base_prefix else "system interpreter",
        "load average at start": load,
        "versions": ", ".join(
            f"{d} {_version(d)}"
            for d in ("pywebview", "PyQt6", "PyQt6-WebEngine", "Authlib", "requests", "google-auth-oauthlib")
        ),
    }


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_info() -> str:
    """The commit measured, and whether tracked files differed from it."""
    head = _git("log", "-1", "--format=%h (%cs)")
    if not head:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def utc_now() -> str:
    """The date and time of the run, UTC."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
