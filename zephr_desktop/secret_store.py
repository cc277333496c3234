"""Where the long-lived secrets (client secrets, refresh tokens) are kept.

``SecretBackend`` is a key/value store of secrets with three kinds: ``KeyringBackend``, the OS
keyring (Keychain, Credential Locker, Secret Service); ``FileBackend``, a 0600 ``secrets.json``
in the data dir, used where no usable keyring exists (said once on stderr by ``default_backend``);
and ``MigratingBackend``, the keyring still reading what an earlier run left in that file and
moving it over. ``default_backend`` picks one (``ZEPHR_DESKTOP_SECRET_STORE=file`` forces the
file); keyring is imported only then, when ``TokenStore`` first needs a secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import paths
from .errors import SecretStoreError
from .fileutil import atomic_write, check_private, ensure_private_dir, tighten

KEYRING_SERVICE = paths.APP_NAME
LOCK_TIMEOUT = 120.0


def stderr_notice(message: str) -> None:
    """Say ``message`` on stderr (the default way the store tells the user something once)."""
    print(message, file=sys.stderr)


class SecretBackend:
    """Key/value secret storage: the OS keyring, or the 0600 file fallback."""

    name = "abstract"

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def set(self, key: str, value: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError


class KeyringBackend(SecretBackend):
    """Secrets in the OS keyring (Keychain, Credential Locker, Secret Service)."""

    def __init__(self, keyring_module: Any) -> None:
        self._keyring = keyring_module
        self.name = f"keyring ({type(keyring_module.get_keyring()).__name__})"

    def get(self, key: str) -> str | None:
        try:
            value = self._keyring.get_password(KEYRING_SERVICE, key)
        except Exception as exc:  # keyring backends raise many unrelated types
            raise SecretStoreError(f"The system keyring could not be read ({type(exc).__name__}).") from exc
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str) -> None:
        try:
            self._keyring.set_password(KEYRING_SERVICE, key, value)
        except Exception as exc:
            raise SecretStoreError(
                f"The system keyring refused to store a secret ({type(exc).__name__}). Unlock it and try again."
            ) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(Exception):
            self._keyring.delete_password(KEYRING_SERVICE, key)


class FileBackend(SecretBackend):
    """Secrets in a 0600 JSON file, read-modify-write under a file lock."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        check_private(self.path.parent, self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        tighten(self.path)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise SecretStoreError(
                f"{self.path} is damaged (not JSON). Move it aside and store the secrets again."
            ) from exc
        if not isinstance(data, dict):
            raise SecretStoreError(f"{self.path} is damaged (not an object). Move it aside.")
        return {str(k): str(v) for k, v in data.items()}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, str]]:
        from filelock import FileLock, Timeout

        ensure_private_dir(self.path.parent)
        lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT, mode=0o600)
        try:
            lock.acquire()
        except Timeout as exc:
            raise SecretStoreError(
                f"{self.path} has been locked by another zephr-desktop process for over {LOCK_TIMEOUT:.0f} s. "
                f"Try again; if it persists, delete {lock.lock_file}."
            ) from exc
        try:
            data = self._read()
            yield data
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        finally:
            lock.release()

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def set(self, key: str, value: str) -> None:
        with self._locked() as data:
            data[key] = value

    def delete(self, key: str) -> None:
        if self.path.exists():
            with self._locked() as data:
                data.pop(key, None)

    def delete_where(self, doomed: Callable[[str], bool]) -> int:
        """Delete every key ``doomed`` picks; returns how many went."""
        if not any(doomed(key) for key in self._read()):
            return 0  # the common case: nothing to rewrite
        with self._locked() as data:
            keys = [key for key in data if doomed(key)]
            for key in keys:
                del data[key]
        return len(keys)


class MigratingBackend(SecretBackend):
    """The keyring, still reading what an earlier run left in the file fallback, and moving it over."""

    def __init__(self, primary: SecretBackend, legacy: FileBackend) -> None:
        self.primary = primary
        self.legacy = legacy
        self.name = primary.name

    def get(self, key: str) -> str | None:
        value = self.primary.get(key)
        if value is None:
            value = self.legacy.get(key)
            if value is not None:
                self.primary.set(key, value)
                self.legacy.delete(key)
        return value

    def set(self, key: str, value: str) -> None:
        self.primary.set(key, value)
        self.legacy.delete(key)

    def delete(self, key: str) -> None:
        self.primary.delete(key)
        self.legacy.delete(key)


def _keyring_usable(keyring_module: Any) -> bool:
    backend = keyring_module.get_keyring()
    try:
        return float(getattr(backend, "priority", 0)) > 0 and type(backend).__module__ != "keyring.backends.fail"
    except Exception:  # a priority that raises means the backend is unusable
        return False


def default_backend(directory: Path, notice: Callable[[str], None] = stderr_notice) -> SecretBackend:
    """The keyring when a usable backend exists, else the 0600 file (said once per data dir)."""
    if os.environ.get("ZEPHR_DESKTOP_SECRET_STORE") != "file":
        import keyring

        if _keyring_usable(keyring):
            ring = KeyringBackend(keyring)
            legacy = FileBackend(paths.secrets_file(directory))
            # Secrets stored while no keyring was usable are moved into it as they are read.
            return MigratingBackend(ring, legacy) if legacy.path.exists() else ring
    backend = FileBackend(paths.secrets_file(directory))
    marker = paths.file_store_noted(directory)
    check_private(directory, marker)
    if not marker.exists():
        notice(
            f"zephr-desktop: no system keyring is available; secrets are kept in {backend.path} (readable only by you)."
        )
        ensure_private_dir(directory)
        marker.touch(mode=0o600)
    return backend
