"""Where every file of the app lives, what the token file holds, and when a token is refreshed.

Each of these is written here once. ``token``'s fast path (``fasttoken``) reads this module
with nothing else of the app loaded, so it imports only the standard library, and on Linux
not even pathlib, typing or json: its locations come from ``fast_dirs`` (platformdirs' rule,
computed with the standard library where it provably gives the same answer; platformdirs
everywhere else) and its JSON from ``loads`` (the json module's own C scanner).

The layout (platformdirs' config and data dirs; ``ZEPHR_DESKTOP_CONFIG_DIR`` and
``ZEPHR_DESKTOP_DATA_DIR`` override them)::

    CONFIG/profiles.toml                       the profiles (config.py)
    DATA/secrets.json                          secrets when no keyring is usable (store.py)
    DATA/.file-secret-store-noted              that fallback was announced once
    DATA/tokens/NAME.json                      a profile's cached access token (format below)
    DATA/tokens/.validated-profiles.json       the stamp: profiles.toml as the full CLI last checked it
    DATA/locks/NAME.lock                       a profile's refresh lock
    DATA/site-sessions/NAME/                   the consent window's kept site cookies
    XDG_DATA_HOME/applications, icons/         the menu entry and its icons (desktop_entry.py)

Every directory the app creates is 0700 and every file 0600; a file or directory of the app's
that another user could write, or that belongs to someone else, is refused (``unsafe_reason``).
"""

from __future__ import annotations

import os
import posixpath
import sys

# Not imported at run time: `token`'s fast path works on strings and reads JSON with the standard library's
# own scanner, and must not pay for pathlib, typing or json (with re) on every call.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

APP_NAME = "zephr-desktop"
CONFIG_FILE = "profiles.toml"
SECRETS_FILE = "secrets.json"
FILE_STORE_NOTED = ".file-secret-store-noted"
TOKENS_DIR = "tokens"
STAMP_FILE = ".validated-profiles.json"
LOCKS_DIR = "locks"
SITE_SESSIONS_DIR = "site-sessions"

TOKEN_FORMAT_VERSION = 2  # 2: the token file names the site, token URL, client and authorize URL it was issued for
STAMP_FORMAT_VERSION = 2  # 2: the stamp holds each profile's issuer
ISSUER_FIELDS = ("site_url", "token_url", "client_id", "authorize_url")


# -- locations ----------------------------------------------------------------------------------
def _path(value: str) -> Path:
    from pathlib import Path

    return Path(value)


def config_dir() -> Path:
    """The app's config directory (``ZEPHR_DESKTOP_CONFIG_DIR`` overrides platformdirs)."""
    override = os.environ.get("ZEPHR_DESKTOP_CONFIG_DIR")
    if override:
        return _path(override)
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def config_file() -> Path:
    """``profiles.toml``."""
    return config_dir() / CONFIG_FILE


def data_dir() -> Path:
    """The app's data directory (``ZEPHR_DESKTOP_DATA_DIR`` overrides platformdirs)."""
    override = os.environ.get("ZEPHR_DESKTOP_DATA_DIR")
    if override:
        return _path(override)
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def _android() -> bool:
    """Whether platformdirs would look for an Android app folder (then it decides, not ``xdg_user_dir``)."""
    return hasattr(sys, "getandroidapilevel") or (
        os.environ.get("ANDROID_DATA") == "/data" and os.environ.get("ANDROID_ROOT") == "/system"
    )


def xdg_user_dir(variable: str, default: str) -> str | None:
    """platformdirs' Linux answer for one of the app's user dirs, computed with the standard library.

    ``$VARIABLE`` when it is an absolute path; when it is unset or blank, ``~/<default>`` from an
    absolute ``$HOME``; then the app's name. None wherever platformdirs must answer: not Linux,
    Android, a relative ``$VARIABLE`` (platformdirs versions disagree about it), no absolute
    ``$HOME`` (platformdirs then asks the password database). tests/test_paths_stdlib.py holds it
    to platformdirs for every combination of the variables unset, empty, blank, relative and absolute.
    """
    if sys.platform != "linux" or _android():
        return None
    base = os.environ.get(variable, "")
    if not base.strip():
        home = os.environ.get("HOME", "")
        if not posixpath.isabs(home):
            return None
        base = posixpath.expanduser("~/" + default)
    elif not posixpath.isabs(base):
        return None
    return posixpath.join(base, APP_NAME)


def fast_dirs() -> tuple[str, str]:
    """The config and data dirs as ``token``'s fast path finds them: the overrides, else the standard
    library's answer on Linux (``xdg_user_dir``), else platformdirs (``config_dir``, ``data_dir``)."""
    config = os.environ.get("ZEPHR_DESKTOP_CONFIG_DIR") or xdg_user_dir("XDG_CONFIG_HOME", ".config")
    data = os.environ.get("ZEPHR_DESKTOP_DATA_DIR") or xdg_user_dir("XDG_DATA_HOME", ".local/share")
    return config or str(config_dir()), data or str(data_dir())


def user_data_home() -> Path:
    """The user's XDG data dir (``$XDG_DATA_HOME``, else ``~/.local/share``): the menu entry and icons go there."""
    from platformdirs import user_data_path

    return user_data_path()


def tokens_dir(data: Path | None = None) -> Path:
    """Where the cached token files and the stamp live."""
    return (data or data_dir()) / TOKENS_DIR


def token_file(profile: str, data: Path | None = None) -> Path:
    """A profile's cached token file."""
    return tokens_dir(data) / f"{profile}.json"


def stamp_file(data: Path | None = None) -> Path:
    """The fast path's stamp (see ``stamp_document``)."""
    return tokens_dir(data) / STAMP_FILE


def locks_dir(data: Path | None = None) -> Path:
    """Where the refresh locks live."""
    return (data or data_dir()) / LOCKS_DIR


def lock_file(profile: str, data: Path | None = None) -> Path:
    """A profile's refresh lock."""
    return locks_dir(data) / f"{profile}.lock"


def secrets_file(data: Path | None = None) -> Path:
    """The 0600 secret file used when no keyring is usable."""
    return (data or data_dir()) / SECRETS_FILE


def file_store_noted(data: Path | None = None) -> Path:
    """The marker saying the secret-file fallback was announced."""
    return (data or data_dir()) / FILE_STORE_NOTED


def site_sessions_dir(data: Path | None = None) -> Path:
    """The parent of the profiles' kept site sessions."""
    return (data or data_dir()) / SITE_SESSIONS_DIR


def site_session_dir(profile: str, data: Path | None = None) -> Path:
    """Where the consent window keeps a profile's site cookies (profiles with ``keep_site_session``)."""
    return site_sessions_dir(data) / profile


def app_paths(data: Path | None = None) -> list[Path]:
    """The app's own directories and shared files, as every command checks them before it starts."""
    data = data or data_dir()
    return [
        config_dir(),
        config_file(),
        data,
        secrets_file(data),
        tokens_dir(data),
        stamp_file(data),
        locks_dir(data),
        site_sessions_dir(data),
    ]


# -- who may write there ----------------------------------------------------------------------
def unsafe_reason(path: str | Path) -> str | None:
    """Why ``path`` (a file or directory of the app's) must not be trusted, or None if it may be.

    As ssh treats ``~/.ssh``: refused if another user could write it (group- or world-writable)
    or if it belongs to someone else. A missing path is fine (the app creates it private).
    """
    if os.name != "posix":
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if st.st_uid != os.geteuid():
        return (
            f"{path} belongs to another user (uid {st.st_uid}), so zephr-desktop will not use it: someone may "
            f"have put it there. If it is yours, `sudo chown {os.geteuid()} {path}`; otherwise move it aside."
        )
    if st.st_mode & 0o022:
        return (
            f"{path} can be written by other users (mode {st.st_mode & 0o777:o}), so zephr-desktop will not use "
            f"it: another user could have changed it. Fix it with `chmod go-w {path}` and check its content."
        )
    return None


# -- the refresh rule --------------------------------------------------------------------------
def refresh_margin(expires_at: float | None, obtained_at: float) -> float:
    """How long before expiry a token is refreshed: ``min(60 s, a third of its lifetime)``."""
    if expires_at is None:
        return 0.0
    return min(60.0, max(0.0, expires_at - obtained_at) / 3.0)


def refresh_due(expires_at: float | None, obtained_at: float, now: float) -> bool:
    """True when a token is expired or within its refresh margin (never for one without expiry)."""
    return expires_at is not None and expires_at - now < refresh_margin(expires_at, obtained_at)


# -- the token file --------------------------------------------------------------------------------
def issuer(site_url: str, token_url: str, client_id: str, authorize_url: str) -> dict[str, str]:
    """What a token is bound to: the site, token URL, client and authorize endpoint that issued it."""
    return {"site_url": site_url, "token_url": token_url, "client_id": client_id, "authorize_url": authorize_url}


def token_document(
    *,
    access_token: str,
    token_type: str,
    expires_at: float | None,
    obtained_at: float,
    scopes: list[str],
    user_id: str | None,
    refresh_ref: str | None,
    issued_by: dict[str, str],
) -> bytes:
    """The token file's content; ``refresh_ref`` names the refresh token's key in the secret store."""
    doc = {
        "version": TOKEN_FORMAT_VERSION,
        "access_token": access_token,
        "token_type": token_type,
        "expires_at": expires_at,
        "obtained_at": obtained_at,
        "scopes": scopes,
        "user_id": user_id,
        "refresh_ref": refresh_ref,
        "issuer": issued_by,
    }
    import json

    return json.dumps(doc, indent=1).encode()


class _ScanContext:
    """What the standard library's JSON scanner reads from its decoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # "NaN", "Infinity", "-Infinity", as json.loads gives them


_JSON_SPACE = " \t\n\r"


def loads(raw: bytes) -> Any:
    """``json.loads`` for the app's own files, without importing json (and re) on the fast path.

    It is json.loads' own scanner (``_json``, the C half of the json module) with json.loads'
    defaults, on UTF-8 text; what json.loads would also take in another encoding (a BOM, UTF-16)
    raises ValueError here, which sends ``token`` to the full path. Where ``_json`` is missing
    (another Python), json.loads itself.
    """
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - CPython has it
        import json

        return json.loads(raw)
    text = raw.decode("utf-8")
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, end = make_scanner(_ScanContext())(text, start)  # type: ignore[arg-type]  # a duck-typed decoder
    except StopIteration as exc:
        raise ValueError(f"not JSON at character {exc.value}") from None
    if text[end:].strip(_JSON_SPACE):
        raise ValueError(f"more than one JSON value (from character {end})")
    return value


def _optional(value: Any, kind: type) -> Any:
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"expected {kind.__name__} or null")
    return value


def read_token_document(raw: bytes) -> dict[str, Any]:
    """The token file's fields, checked; ``issuer`` is None for a file from before the binding.

    Raises ValueError for anything that is not a token file this version understands.
    """
    data = loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    version = data.get("version", 1)
    if version not in (1, TOKEN_FORMAT_VERSION):
        raise ValueError(f"unknown version {version!r}")
    access = data["access_token"]
    if not isinstance(access, str) or not access:
        raise ValueError("no access token")
    expires_at = data.get("expires_at")
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int | float)):
        raise ValueError("expires_at is not a number")
    obtained_at = data["obtained_at"]
    if isinstance(obtained_at, bool) or not isinstance(obtained_at, int | float):
        raise ValueError("obtained_at is not a number")
    scopes = data.get("scopes") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError("scopes is not a list of strings")
    issued_by = data.get("issuer") if version == TOKEN_FORMAT_VERSION else None
    if version == TOKEN_FORMAT_VERSION and not (
        isinstance(issued_by, dict)
        and set(issued_by) == set(ISSUER_FIELDS)
        and all(isinstance(v, str) for v in issued_by.values())
    ):
        raise ValueError("issuer is not a site, token URL, client ID and authorize URL")
    return {
        "access_token": access,
        "token_type": str(data.get("token_type") or "bearer"),
        "expires_at": None if expires_at is None else float(expires_at),
        "obtained_at": float(obtained_at),
        "scopes": scopes,
        "user_id": _optional(data.get("user_id"), str),
        "refresh_ref": _optional(data.get("refresh_ref"), str),
        "issuer": issued_by,
    }


# -- the stamp: profiles.toml as the full CLI last validated it -------------------------------------
def file_identity(path: str | Path) -> list[int]:
    """What must not change for a stamp to hold: inode, size, mtime in nanoseconds."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def config_identity() -> list[int] | None:
    """The identity of ``profiles.toml`` now (None if missing); take it *before* validating the file."""
    try:
        return file_identity(config_file())
    except OSError:
        return None


def stamp_document(identity: list[int], default: str | None, issuers: dict[str, dict[str, str]]) -> bytes:
    """The stamp: ``profiles.toml`` with this identity validated, with this default and these profiles."""
    doc = {"version": STAMP_FORMAT_VERSION, "config": identity, "default": default, "profiles": issuers}
    import json

    return json.dumps(doc, sort_keys=True).encode()


def read_stamp(raw: bytes, identity: list[int]) -> tuple[str | None, dict[str, Any]] | None:
    """(default profile, issuer by profile name) if the stamp is current for ``identity``, else None."""
    stamp = loads(raw)
    if not isinstance(stamp, dict) or stamp.get("version") != STAMP_FORMAT_VERSION:
        return None
    profiles = stamp.get("profiles")
    default = stamp.get("default")
    if stamp.get("config") != identity or not isinstance(profiles, dict):
        return None
    return (default if isinstance(default, str) else None), profiles
