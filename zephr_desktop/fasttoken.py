"""The ``token`` fast path: print a fresh cached token at the cost of one interpreter start.

Scripts call ``zephr-desktop token`` in loops, so when the cached token is fresh this path
imports only ``paths`` - on Linux the standard library alone, with no platformdirs, pathlib or
json (see ``paths.fast_dirs`` and ``paths.loads``), elsewhere platformdirs too - not argparse,
tomllib, the profile model or anything that talks HTTP. It trusts ``profiles.toml`` only as the full CLI
last validated it: the full path leaves a stamp (the file's identity, the default profile and
each profile's issuer: site, token URL, client ID), and any change to the file, any other
argument, a token issued for another issuer, a file or directory that another user could write
or does not belong to the user, any doubt at all sends the call to the full CLI, which
validates, refreshes, refuses or explains, and writes a new stamp.
"""

from __future__ import annotations

import os
import sys

from . import paths


def _profile_name(argv: list[str]) -> tuple[bool, str | None]:
    """(is this a plain ``token`` call, the profile it names)."""
    if argv == ["token"]:
        return True, None
    if len(argv) == 3 and argv[0] == "token" and argv[1] in ("-p", "--profile"):
        return True, argv[2]
    if len(argv) == 2 and argv[0] == "token" and argv[1].startswith("--profile="):
        return True, argv[1].split("=", 1)[1]
    return False, None


def _private(*files: str) -> bool:
    """True if none of ``files`` could have been written by another user (else the full path refuses)."""
    return all(paths.unsafe_reason(path) is None for path in files)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def cached_token(argv: list[str], now: float) -> str | None:
    """The fresh cached access token for a plain ``token`` call, or None to take the full path."""
    plain, name = _profile_name(argv)
    if not plain or os.environ.get("ZEPHR_DESKTOP_NO_FAST_PATH"):
        return None
    try:
        # Strings, not pathlib: on Linux the locations come from the standard library (paths.fast_dirs).
        config_dir, data = paths.fast_dirs()
        config = os.path.join(config_dir, paths.CONFIG_FILE)
        tokens = os.path.join(data, paths.TOKENS_DIR)
        stamp_path = os.path.join(tokens, paths.STAMP_FILE)
        if not _private(config_dir, config, data, tokens, stamp_path):
            return None
        stamp = paths.read_stamp(_read(stamp_path), paths.file_identity(config))
        if stamp is None:
            return None
        default, issuers = stamp
        name = name or default
        if name is None or name not in issuers:
            return None
        path = os.path.join(tokens, f"{name}.json")
        if not _private(path) or (os.name == "posix" and os.stat(path).st_mode & 0o077):
            return None  # the full path refuses it, or tightens it and says so
        record = paths.read_token_document(_read(path))
        if record["issuer"] is None or record["issuer"] != issuers[name]:
            return None  # issued for another site, token URL or client: the full path says signed out
        if paths.refresh_due(record["expires_at"], record["obtained_at"], now):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    access: str = record["access_token"]
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
