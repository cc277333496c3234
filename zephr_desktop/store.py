"""Where tokens and secrets live.

- The access token, its expiry, scopes and user id: a 0600 JSON file per profile in the
  platformdirs data dir (format and places in ``paths``), so ``token`` reads it without
  importing keyring.
- A token is bound to the site, token URL and client ID it was issued for (recorded in its
  file, which also names the refresh token): for a profile that now says otherwise, or a file
  from before the binding, the profile is signed out and nothing of the token is handed out.
- Every directory is 0700 and every file 0600; one another user could write is refused.
- The long-lived secrets (client secret, refresh token): the OS keyring; where no usable
  keyring exists, a 0600 ``secrets.json`` in the data dir (said once on stderr). The backends
  that keep them are in ``secret_store``; this module holds ``TokenStore`` and its token files.
- Crash safety: a refresh token is stored under a fresh key *before* the token file that
  names it is atomically replaced, so a crash at any point leaves the old token file and
  its (still stored) refresh token, or the new pair - never a mix.
- ``refresh_lock()``: one refresh per profile at a time across processes.
- ``ZEPHR_CLIENT_SECRET`` is taken out of the environment once (``take_env_client_secret``) and
  handed to the store, so no child process (web engine, browser) inherits it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import paths
from .config import Profiles
from .errors import SecretStoreError, ZephrError
from .fileutil import atomic_write, check_private, ensure_private_dir, remove_stale_temps, tighten
from .oauth import Token
from .profile import Profile
from .secret_store import LOCK_TIMEOUT, FileBackend, MigratingBackend, SecretBackend, default_backend, stderr_notice

ENV_CLIENT_SECRET = "ZEPHR_CLIENT_SECRET"
_ISSUER_LABELS = {
    "site_url": "site",
    "token_url": "token URL",
    "client_id": "client ID",
    "authorize_url": "authorize URL",
}


def take_env_client_secret(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Remove ``ZEPHR_CLIENT_SECRET`` from the environment and return it (None if unset or empty).

    Called once when the app starts, before any child process (a browser, the web engine) can
    inherit it; the value then lives only in memory (``TokenStore(client_secret_override=...)``).
    """
    return environ.pop(ENV_CLIENT_SECRET, None) or None


@dataclass(frozen=True)
class CachedToken:
    """A profile's cached token (never with its refresh token) and the key its refresh token is under."""

    token: Token
    refresh_ref: str | None = None

    @property
    def has_refresh(self) -> bool:
        """Whether a refresh token was stored with it."""
        return self.refresh_ref is not None


class TokenStore:
    """Tokens and secrets per profile."""

    def __init__(
        self,
        directory: Path | None = None,
        secrets: SecretBackend | None = None,
        notice: Callable[[str], None] = stderr_notice,
        client_secret_override: str | None = None,
    ) -> None:
        self.directory = directory or paths.data_dir()
        self._secrets = secrets
        self._notice = notice
        self._client_secret_override = client_secret_override or None

    @property
    def secrets(self) -> SecretBackend:
        """The secret backend, chosen (and keyring imported) only when first needed."""
        if self._secrets is None:
            self._secrets = default_backend(self.directory, self._notice)
        return self._secrets

    def token_path(self, profile: str) -> Path:
        """The cached token file of a profile."""
        return paths.token_file(profile, self.directory)

    def _private_subdir(self, name: str) -> Path:
        ensure_private_dir(self.directory)  # the data dir itself is checked (and tightened) too
        return ensure_private_dir(self.directory / name)

    # -- access token (no keyring) -------------------------------------------------
    def _read(self, profile: str) -> dict[str, Any] | None:
        """The profile's token file as ``paths.read_token_document`` gives it, whoever issued it."""
        path = self.token_path(profile)
        check_private(self.directory, path.parent, path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        tighten(path)
        try:
            return paths.read_token_document(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise SecretStoreError(
                f"The stored token {path} is damaged. Run `zephr-desktop logout` and sign in again."
            ) from exc

    def load_cached(self, profile: Profile) -> CachedToken | None:
        """The cached token without its refresh token (no secret store read).

        None when there is none, and when it was issued for another site, token URL or client
        than the profile now names (or by a version that did not record it): signed out.
        """
        record = self._read(profile.name)
        if record is None or record["issuer"] != profile.issuer:
            return None
        token = Token(
            access_token=record["access_token"],
            token_type=record["token_type"],
            expires_at=record["expires_at"],
            obtained_at=record["obtained_at"],
            scopes=tuple(record["scopes"]),
            user_id=record["user_id"],
        )
        return CachedToken(token, record["refresh_ref"])

    def signed_out_reason(self, profile: Profile) -> str | None:
        """Why a token stored for the profile does not count (one sentence), or None if there is none."""
        record = self._read(profile.name)
        if record is None:
            return None
        issued = record["issuer"]
        if issued is None:
            return (
                f"Profile '{profile.name}' is signed out: its stored token was saved by an earlier zephr-desktop "
                "that did not record which site issued it."
            )
        now = profile.issuer
        for key in paths.ISSUER_FIELDS:
            if issued[key] != now[key]:
                return (
                    f"Profile '{profile.name}' is signed out: its token was issued for {_ISSUER_LABELS[key]} "
                    f"{issued[key]}, but profiles.toml now names {now[key]}."
                )
        return None

    def load(self, profile: Profile) -> Token | None:
        """The stored token with its refresh token (reads the secret store); None if signed out."""
        cached = self.load_cached(profile)
        if cached is None:
            return None
        ref = cached.refresh_ref
        return replace(cached.token, refresh_token=self.secrets.get(ref) if ref else None)

    def check_refresh_token_reachable(self, profile: Profile) -> None:
        """Raise SecretStoreError if the token file names a refresh token the secret store in use lacks.

        That refresh token was saved while another store was in use (a system keyring that is not
        available now); signing in again is not the only way out, so the error says so.
        """
        cached = None
        with contextlib.suppress(SecretStoreError):
            cached = self.load_cached(profile)
        if cached is None or cached.refresh_ref is None or self.secrets.get(cached.refresh_ref) is not None:
            return
        name = profile.name
        raise SecretStoreError(
            f"The refresh token of profile '{name}' is not in the secret store in use now "
            f"(the {self.secrets.name} store); it was saved while another one was in use (a system keyring "
            "that is not available now?). Make that keyring available again, or sign in again with "
            f"`zephr-desktop login --profile {name}`."
        )

    def save(self, profile: Profile, token: Token) -> None:
        """Store a token bound to the profile's issuer: a new refresh token first, then the file, then clean up."""
        old = None
        with contextlib.suppress(SecretStoreError):
            old = self._read(profile.name)
        old_ref = old["refresh_ref"] if old else None
        ref: str | None = None
        if token.refresh_token:
            if old_ref and self.secrets.get(old_ref) == token.refresh_token:
                # Zephr keeps the refresh token on refresh by default: nothing new to store.
                ref = old_ref
            else:
                import secrets

                ref = f"{profile.name}/refresh_token/{secrets.token_hex(8)}"
                self.secrets.set(ref, token.refresh_token)
        doc = paths.token_document(
            access_token=token.access_token,
            token_type=token.token_type,
            expires_at=token.expires_at,
            obtained_at=token.obtained_at,
            scopes=list(token.scopes),
            user_id=token.user_id,
            refresh_ref=ref,
            issued_by=profile.issuer,
        )
        self._private_subdir(paths.TOKENS_DIR)
        atomic_write(self.token_path(profile.name), doc)
        if old_ref and old_ref != ref:
            self.secrets.delete(old_ref)

    def stamp_validated(self, identity: list[int] | None, profiles: Profiles) -> None:
        """Let plain ``token`` calls skip validating ``profiles.toml`` while it keeps ``identity``.

        ``identity`` is ``paths.config_identity()`` taken before ``profiles`` was loaded, so an edit
        in between voids the stamp; the stamp records each profile's issuer for the fast path.
        """
        if identity is None:
            return
        try:
            default: str | None = profiles.get(None).name
        except ZephrError:
            default = None
        issuers = {name: p.issuer for name, p in profiles.profiles.items()}
        doc = paths.stamp_document(identity, default, issuers)
        path = paths.stamp_file(self.directory)
        # Only a shortcut: a data dir that cannot take it just keeps `token` on the full path.
        with contextlib.suppress(OSError):
            if not path.exists() or path.read_bytes() != doc:
                self._private_subdir(paths.TOKENS_DIR)
                atomic_write(path, doc)

    def delete(self, profile: str) -> bool:
        """Forget a profile's tokens (and whatever killed saves left of them); True if there was one."""
        with self.refresh_lock(profile):
            cached = None
            with contextlib.suppress(SecretStoreError):
                cached = self._read(profile)
            if cached and cached["refresh_ref"]:
                self.secrets.delete(cached["refresh_ref"])
            try:
                self.token_path(profile).unlink()
                had = True
            except FileNotFoundError:
                had = cached is not None
            self.tidy(profile)
        # The consent window's kept site cookies are a live Zephr session: they go with the tokens.
        shutil.rmtree(self.site_session_dir(profile), ignore_errors=True)
        return had

    def site_session_dir(self, profile: str) -> Path:
        """Where the consent window keeps a profile's site cookies (profiles with keep_site_session)."""
        return paths.site_session_dir(profile, self.directory)

    def tidy(self, profile: str, temp_age: float = 600.0) -> int:
        """Remove what saves killed half-way left: temp files, refresh tokens no token file names.

        Call it holding ``refresh_lock(profile)``, which every save of the profile holds too, so no
        save in progress can lose the refresh token it has just stored.
        """
        removed = remove_stale_temps(self.token_path(profile).parent, f".{profile}.json.", temp_age)
        removed += remove_stale_temps(self.directory, f".{paths.SECRETS_FILE}.", temp_age)
        cached = None
        with contextlib.suppress(SecretStoreError):
            cached = self._read(profile)
        live = cached["refresh_ref"] if cached else None
        prefix = f"{profile}/refresh_token/"
        backend = self.secrets
        files = [backend] if isinstance(backend, FileBackend) else []
        if isinstance(backend, MigratingBackend):
            files = [backend.legacy]
        # A keyring cannot list its entries: there only the superseded token is deleted (in save()).
        for fb in files:
            removed += fb.delete_where(lambda key: key.startswith(prefix) and key != live)
        return removed

    # -- client secret --------------------------------------------------------------
    def get_client_secret(self, profile: str) -> str | None:
        """The profile's client secret (``ZEPHR_CLIENT_SECRET``, taken at start, overrides the stored one)."""
        if self._client_secret_override:
            return self._client_secret_override
        return self.secrets.get(f"{profile}/client_secret")

    def set_client_secret(self, profile: str, secret: str) -> None:
        """Store the profile's client secret."""
        self.secrets.set(f"{profile}/client_secret", secret)

    def delete_client_secret(self, profile: str) -> None:
        """Forget the profile's client secret."""
        self.secrets.delete(f"{profile}/client_secret")

    # -- the cross-process refresh lock ------------------------------------------
    @contextlib.contextmanager
    def refresh_lock(self, profile: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the profile's refresh lock (a file lock: one refresher across processes)."""
        from filelock import FileLock, Timeout

        self._private_subdir(paths.LOCKS_DIR)
        path = paths.lock_file(profile, self.directory)
        check_private(path)
        lock = FileLock(str(path), timeout=timeout, mode=0o600)
        try:
            lock.acquire()
        except Timeout as exc:
            raise SecretStoreError(
                f"Another zephr-desktop process has been refreshing profile '{profile}' for over "
                f"{timeout:.0f} s. Try again; if it persists, delete {lock.lock_file}."
            ) from exc
        try:
            yield
        finally:
            lock.release()
