"""The ``token`` fast path: print a fresh cached token at the cost of one interpreter start.

Scripts call ``zephr-desktop token`` in loops, so when the cached token is fresh this path
imports only ``os``, ``sys``, ``json`` and platformdirs - not argparse, tomllib, the
profile model or anything that talks HTTP. It trusts ``profiles.toml`` only as the full CLI
last validated it: the full path leaves a stamp (the file's inode, size and mtime, the
default profile and the profile names), and any change to the file, any other argument,
any doubt about the token file sends the call to the full CLI, which validates, refreshes,
explains errors and writes a new stamp.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

APP_NAME = "zephr-desktop"
STAMP_NAME = ".validated-profiles.json"


def _config_file() -> Path:
    override = os.environ.get("ZEPHR_DESKTOP_CONFIG_DIR")
    if override:
        return Path(override) / "profiles.toml"
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False) / "profiles.toml"


def _data_dir() -> Path:
    override = os.environ.get("ZEPHR_DESKTOP_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def file_identity(path: Path) -> list[int]:
    """What must not change for a stamp to hold: inode, size, mtime in nanoseconds."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def config_identity() -> list[int] | None:
    """The identity of ``profiles.toml`` now (None if it is missing); take it *before* validating."""
    try:
        return file_identity(_config_file())
    except OSError:
        return None


def write_stamp(identity: list[int] | None, default: str | None, names: list[str]) -> None:
    """Record that ``profiles.toml`` with this identity validated (called by the full CLI)."""
    from .fileutil import atomic_write

    if identity is None:
        return
    doc = json.dumps({"config": identity, "default": default, "profiles": sorted(names)}).encode()
    path = _data_dir() / "tokens" / STAMP_NAME
    # Only a shortcut: a data dir that cannot take it just keeps `token` on the full path.
    with contextlib.suppress(OSError):
        if not path.exists() or path.read_bytes() != doc:
            atomic_write(path, doc)


def refresh_due(expires_at: float, obtained_at: float, now: float) -> bool:
    """``oauth.Token.needs_refresh``'s rule: less than min(60 s, a third of the lifetime) left."""
    return expires_at - now < min(60.0, max(0.0, expires_at - obtained_at) / 3.0)


def _profile_name(argv: list[str]) -> tuple[bool, str | None]:
    """(is this a plain ``token`` call, the profile it names)."""
    if argv == ["token"]:
        return True, None
    if len(argv) == 3 and argv[0] == "token" and argv[1] in ("-p", "--profile"):
        return True, argv[2]
    if len(argv) == 2 and argv[0] == "token" and argv[1].startswith("--profile="):
        return True, argv[1].split("=", 1)[1]
    return False, None


def cached_token(argv: list[str], now: float) -> str | None:
    """The fresh cached access token for a plain ``token`` call, or None to take the full path."""
    plain, name = _profile_name(argv)
    if not plain or os.environ.get("ZEPHR_DESKTOP_NO_FAST_PATH"):
        return None
    tokens = _data_dir() / "tokens"
    try:
        identity = file_identity(_config_file())
        with open(tokens / STAMP_NAME, encoding="utf-8") as fh:
            stamp: dict[str, Any] = json.load(fh)
        if stamp.get("config") != identity:
            return None
        name = name or stamp.get("default")
        if not isinstance(name, str) or name not in stamp.get("profiles", ()):
            return None
        path = tokens / f"{name}.json"
        if os.name == "posix" and os.stat(path).st_mode & 0o077:
            return None  # the full path tightens it and says so
        with open(path, encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
        access = data["access_token"]
        expires_at = data["expires_at"]
        if not isinstance(access, str) or not access:
            return None
        if expires_at is not None and refresh_due(float(expires_at), float(data["obtained_at"]), now):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return access


def main_entry() -> None:
    """Console-script and ``python -m`` entry: the fast path when it applies, else the full CLI."""
    import time

    token = cached_token(sys.argv[1:], time.time())
    if token is not None:
        sys.stdout.write(token + "\n")
        sys.exit(0)
    from .cli import main

    sys.exit(main())
