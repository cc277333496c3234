"""``profiles.toml``: the profiles by name and the selected one, read, upgraded and written.

The file lives in the platformdirs config dir (``paths.config_file``). The client secret is
never in it (see ``store``). An older valid file is upgraded in place with a backup; one from a
newer release is refused untouched. What a profile is and how its fields are checked is
``profile``'s business. Only the standard library and platformdirs are imported at module
level, so the CLI's full ``token`` path (taken whenever the fast path in ``fasttoken`` cannot be)
stays light.
"""

from __future__ import annotations

import contextlib
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fileutil, paths
from .errors import ConfigError, ProfileNotFoundError
from .profile import Profile, validate_profile

log = logging.getLogger(__name__)

# The profiles.toml format this release writes (`schema = 1`; files from before the key are 0).
# An older valid file is upgraded in place, atomically, keeping a copy as profiles.toml.bak-<old>;
# a file from a newer release is refused and left exactly as it is.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Profiles:
    """Everything in ``profiles.toml``: the profiles by name and the selected one."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    default: str | None = None

    def get(self, name: str | None = None) -> Profile:
        """The named profile, else the default one, else the only one."""
        if name is None:
            name = self.default
            if name is None and len(self.profiles) == 1:
                name = next(iter(self.profiles))
        if name is None:
            if not self.profiles:
                raise ProfileNotFoundError(
                    "No profile yet. Add one with `zephr-desktop profile add NAME --site URL --client-id ID` "
                    "(or try `zephr-desktop --demo`)."
                )
            raise ProfileNotFoundError(
                f"Several profiles ({', '.join(sorted(self.profiles))}) and none selected. "
                "Pass --profile NAME or run `zephr-desktop profile use NAME`."
            )
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ProfileNotFoundError(
                f"No profile named '{name}' (known: {known}). Add it with `zephr-desktop profile add {name} ...`."
            ) from None


def load_profiles(path: Path | None = None) -> Profiles:
    """Read and validate ``profiles.toml``; a missing file means no profiles.

    A valid file in an older format is upgraded in place first (see ``_upgrade``); a file
    from a newer release is refused and never rewritten.
    """
    path = path or paths.config_file()
    fileutil.check_private(path.parent, path)  # another user's edit could send the tokens and secret elsewhere
    raw = _read_file(path)
    if raw is None:
        return Profiles()
    data = _decode(raw, path)
    schema = _schema(data, str(path))
    profiles = _parse(data, str(path))  # only a file that validates is upgraded
    if schema < SCHEMA_VERSION:
        _upgrade(path, raw, schema, profiles)
    return profiles


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", path=str(path)) from exc


def _decode(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"is not valid TOML ({exc}); fix or delete the file", path=str(path)) from exc


def _schema(data: dict[str, Any], path: str) -> int:
    """The file's format version (0 before the key existed); a newer one than this release reads is refused."""
    value = data.get("schema", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < ("schema" in data):
        raise ConfigError(
            f"must be the file format's version, a whole number such as {SCHEMA_VERSION} (got {value!r})",
            path=path,
            field="schema",
        )
    if value > SCHEMA_VERSION:
        raise ConfigError(
            f"written by a newer zephr-desktop (schema {value}); upgrade the app (this one reads schema "
            f"{SCHEMA_VERSION} and older). The file was left as it is.",
            path=path,
        )
    return value


def _to_schema_1(raw: bytes) -> bytes:
    # Schema 1 only adds the version key; a top-level key may open any TOML document, and
    # everything the person wrote (comments, order, spacing) stays as it was.
    return b"schema = 1\n" + raw


_UPGRADES = {0: _to_schema_1}  # from schema N to N + 1, on the file's bytes


def backup_path(path: Path, schema: int, raw: bytes) -> Path:
    """Where the copy of a schema-``schema`` file goes before it is upgraded.

    ``profiles.toml.bak-<schema>``, or ``.bak-<schema>.<n>`` when an earlier, different copy
    holds that name; an existing copy of exactly these bytes is reused.
    """
    candidate = path.with_name(f"{path.name}.bak-{schema}")
    n = 1
    while candidate.exists():
        with contextlib.suppress(OSError):
            if candidate.read_bytes() == raw:
                return candidate
        candidate = path.with_name(f"{path.name}.bak-{schema}.{n}")
        n += 1
    return candidate


def _upgrade(path: Path, raw: bytes, schema: int, profiles: Profiles) -> None:
    """Rewrite an older file in the current format: a backup first, then one atomic replace."""
    new = raw
    for version in range(schema, SCHEMA_VERSION):
        new = _UPGRADES[version](new)
    if _parse(_decode(new, path), str(path)) != profiles:  # never write a file that means something else
        log.warning("not upgrading %s: the upgraded file would not read back the same", path)
        return
    try:
        backup = backup_path(path, schema, raw)
        if not backup.exists():
            fileutil.atomic_write(backup, raw)
        if _read_file(path) != raw:
            return  # changed meanwhile (another process upgraded or saved it): leave that alone
        fileutil.atomic_write(path, new)
    except OSError as exc:
        # The profiles were read; only the upgrade could not be written. Try again next time.
        log.warning(
            "could not upgrade %s to schema %d (%s); it still works as it is", path, SCHEMA_VERSION, exc.strerror or exc
        )
        return
    log.info("upgraded %s to schema %d; the old file is kept as %s", path, SCHEMA_VERSION, backup)


def _parse(data: dict[str, Any], path: str) -> Profiles:
    unknown = set(data) - {"schema", "default", "profiles"}
    if unknown:
        raise ConfigError(
            f'unknown top-level key; the file holds `schema = {SCHEMA_VERSION}`, `default = "NAME"` and '
            "[profiles.NAME] tables",
            path=path,
            field=sorted(unknown)[0],
        )
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError("must be a table of [profiles.NAME] tables", path=path, field="profiles")
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError("must be a table", path=path, profile=name)
        profiles[name] = validate_profile({**table, "name": name}, path)
    default = data.get("default")
    if default is not None and (not isinstance(default, str) or default not in profiles):
        raise ConfigError(
            f"names profile {default!r}, which does not exist; run `zephr-desktop profile use NAME`",
            path=path,
            field="default",
        )
    return Profiles(profiles, default)


def _refuse_newer(path: Path) -> None:
    """Raise the newer-release error if ``path`` holds a file from a newer release (it is never replaced)."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # nothing readable to protect; callers load and validate the file before saving
    version = data.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        _schema(data, str(path))


def save_profiles(profiles: Profiles, path: Path | None = None) -> None:
    """Write ``profiles.toml`` atomically (0600, directory 0700)."""
    import tomli_w

    path = path or paths.config_file()
    _refuse_newer(path)
    doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
    if profiles.default:
        doc["default"] = profiles.default
    doc["profiles"] = {name: p.to_toml_table() for name, p in sorted(profiles.profiles.items())}
    fileutil.atomic_write(path, tomli_w.dumps(doc).encode("utf-8"))


def save_profile(profile: Profile, *, make_default: bool | None = None, path: Path | None = None) -> Profiles:
    """Add or replace one profile; it becomes the default if asked or if it is the first."""
    current = load_profiles(path)
    profiles = {**current.profiles, profile.name: profile}
    default = current.default
    if make_default or (make_default is None and default is None):
        default = profile.name
    updated = Profiles(profiles, default)
    save_profiles(updated, path)
    return updated


def remove_profile(name: str, path: Path | None = None) -> Profiles:
    """Delete one profile from the file (its tokens are the store's business)."""
    current = load_profiles(path)
    current.get(name)
    profiles = {k: v for k, v in current.profiles.items() if k != name}
    default = current.default if current.default != name else None
    updated = Profiles(profiles, default)
    save_profiles(updated, path)
    return updated


def set_default(name: str, path: Path | None = None) -> Profiles:
    """Select the profile used when none is named."""
    current = load_profiles(path)
    current.get(name)
    updated = Profiles(current.profiles, name)
    save_profiles(updated, path)
    return updated


def get_profile(name: str | None = None, path: Path | None = None) -> Profile:
    """Load the file and return the named (or default) profile."""
    return load_profiles(path).get(name)
