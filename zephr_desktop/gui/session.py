"""The main window's state, without Qt: the profile shown, the sign-in in progress, messages, auto refresh.

The page's bridge (``api``) turns each page call into a call here. The window side (the
consent window, the clipboard, pushing events to the page) is a ``Shell`` (see ``contracts``);
the store and the clock are parameters, so tests run this against the sandbox with a fake clock.
A sign-in itself is run by ``signin.SignIn``, which the session holds and shares its lock with.
Methods raise ``ZephrError`` with a message for the page; the bridge turns it into words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import accounts
from ..config import Profiles, load_profiles
from ..errors import ConfigError, ZephrError
from ..oauth import Token
from ..profile import Profile, unknown_scope_warning
from ..store import CachedToken, TokenStore
from ..urls import how_redirect_is_received, listens_on_loopback
from .autorefresh import AUTO_FAILED, AutoRefresh
from .contracts import Shell
from .signin import SignIn

if TYPE_CHECKING:
    from ..check import Finding

log = logging.getLogger(__name__)

AUTO_REFRESH_TICK = 0.5  # seconds between two checks of the shown token
LOGIN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Snapshot:
    """Everything the page is drawn from, read at one moment."""

    profiles: Profiles
    current: str | None
    token: CachedToken | None  # None too for an expired token that cannot be refreshed
    now: float
    signing_in: bool
    in_browser: bool
    redirect_uri: str | None
    redirect_caught: bool  # no listener: the consent window catches the redirect
    auto_refresh: bool
    error: str | None
    notice: str | None
    demo_hint: str | None
    browser_only: str | None = None


class Session:
    """The main window's state: profiles, the sign-in in progress, the token, messages, auto refresh."""

    def __init__(
        self,
        shell: Shell,
        *,
        store: TokenStore | None = None,
        profile_name: str | None = None,
        demo_hint: str | None = None,
        clock: Callable[[], float] = time.time,
        login_timeout: float = LOGIN_TIMEOUT,
    ) -> None:
        self._shell = shell
        self._store = store or TokenStore()
        self._clock = clock
        self._demo_hint = demo_hint
        self._requested = profile_name
        self._lock = threading.RLock()
        self._current: str | None = None
        self._error: str | None = None
        self._notice: str | None = None
        self._secret_known: dict[str, bool] = {}
        self.auto = AutoRefresh(self._store, clock)
        self._signin = SignIn(
            shell,
            self._store,
            self.auto,
            lock=self._lock,
            set_messages=self._set_messages,
            clock=clock,
            login_timeout=login_timeout,
        )
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- what the page is drawn from ----------------------------------------------------
    def snapshot(self, profiles: Profiles | None = None) -> Snapshot:
        """The profiles, the one shown, its token, the sign-in phase and the messages."""
        error: str | None = None
        try:
            profiles = profiles or load_profiles()
        except ConfigError as exc:
            profiles, error = Profiles(), exc.message
        name = self._pick(profiles)
        shown: CachedToken | None = None
        now = self._clock()
        if name is not None:
            try:
                cached = self._store.load_cached(profiles.profiles[name])
                if cached is None:  # say why when a token is there but was issued for another site
                    error = error or self._store.signed_out_reason(profiles.profiles[name])
            except ZephrError as exc:
                cached, error = None, exc.message
            # An expired token without a way to refresh it is of no use to show.
            if cached is not None and (cached.has_refresh or not cached.token.is_expired(now)):
                shown = cached
                self.auto.shown(name, cached.token)
        with self._lock:
            signin = self._signin.current
            return Snapshot(
                profiles=profiles,
                current=name,
                token=shown,
                now=now,
                signing_in=signin is not None,
                in_browser=signin is not None and signin.in_browser,
                redirect_uri=signin.flow.redirect_uri if signin is not None else None,
                redirect_caught=signin is not None and not signin.flow.listens,
                auto_refresh=self.auto.enabled,
                error=self._error or error,
                notice=self._notice,
                demo_hint=self._demo_hint,
                browser_only=self._shell.browser_only(),
            )

    def requested_profile_problem(self, shown: Snapshot) -> str | None:
        """Why the profile asked for at start (``--profile``) is not the one shown, if it is not."""
        if not self._requested or self._requested in shown.profiles.profiles:
            return None
        try:
            load_profiles().get(self._requested)
        except ConfigError as exc:  # says which profile was asked for, and which exist
            return exc.message
        return None

    def current_profile(self) -> Profile:
        """The profile shown (raises a ZephrError saying how to add one if there is none)."""
        profiles = load_profiles()
        return profiles.get(self._pick(profiles))

    def cached_token(self, profile: Profile) -> Token | None:
        """The profile's cached access token (no secret store read); None if signed out."""
        cached = self._store.load_cached(profile)
        return cached.token if cached else None

    def has_secret(self, name: str) -> bool:
        """Whether a client secret is stored for the profile (read once, then remembered)."""
        if name not in self._secret_known:
            try:
                self._secret_known[name] = bool(self._store.get_client_secret(name))
            except ZephrError:
                self._secret_known[name] = False
        return self._secret_known[name]

    def where(self) -> dict[str, str]:
        """Where this window's files are kept: ``config_file``, ``data_dir``, ``secret_store`` (in words)."""
        from ..paths import config_file

        try:
            backend = self._store.secrets
            path = getattr(backend, "path", None)
            secrets = f"a private file, {path}" if path is not None else f"the system {backend.name}"
        except Exception as exc:  # a keyring that fails to load says so here, not as a crash
            secrets = f"unknown (the secret store could not be opened: {type(exc).__name__})"
        return {"config_file": str(config_file()), "data_dir": str(self._store.directory), "secret_store": secrets}

    # -- profiles ------------------------------------------------------------------------
    def select(self, name: str) -> Profiles:
        """Show another profile."""
        profiles = load_profiles()
        profiles.get(name)
        with self._lock:
            if self._signin.current is not None:
                raise ZephrError("Finish or cancel the sign-in in progress before switching profiles.")
            self._current = name
            self._error = self._notice = None
        return profiles

    def save(self, form: Mapping[str, Any]) -> Profile:
        """Add or change a profile from the settings form; the client secret is write-only."""
        profile = accounts.profile_from_form(form, load_profiles())
        secret = form.get("client_secret")
        secret = secret.strip() if isinstance(secret, str) and secret.strip() else None
        saved = accounts.save(profile, store=self._store, client_secret=secret)
        if secret:
            self._secret_known[profile.name] = True
        if saved.signed_out:
            self.auto.forget(profile.name)
        with self._lock:
            if self._signin.current is None:
                self._current = profile.name
            self._error = None
            self._notice = f"Profile '{profile.name}' saved." + (
                " Its site, client ID, token URL or authorize URL changed, so it is signed out."
                if saved.signed_out
                else ""
            )
            if not listens_on_loopback(profile.redirect_uri):
                self._notice += " " + how_redirect_is_received(profile.redirect_uri)
            warning = unknown_scope_warning(profile)
            if warning:
                self._notice += " " + warning
        return profile

    def check(self, form: Mapping[str, Any]) -> list[Finding]:
        """What is wrong with the profile the settings form describes, saved or not (``profile check``)."""
        from ..check import check_profile

        profile = accounts.profile_from_form(form, load_profiles())
        secret = form.get("client_secret")
        secret = secret.strip() if isinstance(secret, str) and secret.strip() else None
        if secret is None and form.get("original_name"):
            secret = self._store.get_client_secret(profile.name)
        return check_profile(profile, secret)

    def remove(self, name: str) -> None:
        """Delete a profile with its tokens and client secret."""
        with self._lock:
            if self._signin.current is not None:
                raise ZephrError("Finish or cancel the sign-in in progress first.")
        accounts.remove(name, store=self._store)
        self._secret_known.pop(name, None)
        self.auto.forget(name)
        with self._lock:
            if self._current == name:
                self._current = None
            self._notice = f"Profile '{name}' removed."
            self._error = None

    # -- sign-in (run by ``signin.SignIn``) ---------------------------------------------------
    def sign_in(self) -> None:
        """Bind the listener, open the consent window, and wait for the callback in the background."""
        self._signin.start(self.current_profile())

    def listening_on(self) -> str | None:
        """The redirect URI the sign-in in progress listens on (None when none is in progress)."""
        return self._signin.listening_on()

    def cancel_sign_in(self) -> None:
        """Stop waiting for the callback (listener closed, port freed)."""
        self._signin.cancel()

    def continue_in_browser(self) -> None:
        """Carry on the sign-in in progress in the system browser (same state, PKCE and listener)."""
        self._signin.continue_in_browser()

    def _set_messages(self, error: str | None, notice: str | None) -> None:
        with self._lock:
            self._error, self._notice = error, notice

    # -- the token ---------------------------------------------------------------------------
    def refresh(self) -> Token:
        """Refresh the shown profile's token now."""
        from ..login import ensure_fresh_token

        token = ensure_fresh_token(self.current_profile(), store=self._store, force=True, clock=self._clock)
        with self._lock:
            self._error = None
            self._notice = "Token refreshed."
        return token

    def set_auto_refresh(self, on: bool) -> None:
        """Turn automatic refresh before expiry on or off."""
        self.auto.set_enabled(on)

    def sign_out(self) -> None:
        """Forget the shown profile's tokens on this computer."""
        profile = self.current_profile()
        accounts.sign_out(profile.name, store=self._store)
        self.auto.forget(profile.name)
        with self._lock:
            self._error = None
            self._notice = f"Signed out of '{profile.name}': its tokens were removed from this computer."

    # -- the watcher and the end -------------------------------------------------------------
    def start_watching(self, tick: float = AUTO_REFRESH_TICK) -> None:
        """Check the shown token every ``tick`` seconds in a background thread (see ``watch_once``)."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, args=(tick,), name="zephr-auto-refresh", daemon=True)
            self._watcher.start()

    def _watch(self, tick: float) -> None:
        while not self._stop.wait(tick):
            try:
                self.watch_once()
            except Exception as exc:  # keep watching; the page shows errors from the state
                log.error("auto refresh check failed: %s", type(exc).__name__)

    def watch_once(self) -> None:
        """Refresh the shown token if it is due, and tell the page about tokens that changed."""
        with self._lock:
            if self._signin.current is not None:
                return
            name = self._current
        if name is None:
            return
        checked = self.auto.check(name, lambda n: load_profiles().get(n))
        if checked is None:
            return
        with self._lock:
            if checked.error:
                self._error = checked.error
            elif checked.refreshed:
                if self._error and self._error.startswith(AUTO_FAILED):
                    self._error = None
                self._notice = "Token refreshed automatically before it expired."
        self._shell.push({"type": checked.event})

    def shutdown(self) -> None:
        """Stop the watcher and cancel a sign-in in progress (the main window is closing)."""
        self._stop.set()
        self._signin.shutdown()

    def _pick(self, profiles: Profiles) -> str | None:
        with self._lock:
            for name in (self._current, self._requested, profiles.default):
                if name and name in profiles.profiles:
                    self._current = name
                    return name
            self._current = min(profiles.profiles) if profiles.profiles else None
            return self._current
