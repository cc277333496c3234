"""The sign-in flow (DESIGN.md section 1) and keeping a token fresh.

Side effects are parameters: how the URL is opened, the store, the clock, the deadline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import parse_qs, urlsplit

from .errors import (
    AuthorizationError,
    CallbackError,
    LoginCancelledError,
    LoginTimeoutError,
    NotLoggedInError,
    ZephrError,
)
from .oauth import AuthRequest, Token, redact, registration, server_name
from .profile import Profile
from .store import TokenStore
from .token_client import SessionFactory, authlib_session, exchange_code, refresh
from .urls import listens_on_loopback

if TYPE_CHECKING:
    from .listener import CallbackListener

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 300.0


def _warm_up() -> None:
    # Importing Authlib + requests costs ~150 ms; pay it while the person reads the consent page.
    # A broken install shows up at the exchange instead.
    with contextlib.suppress(ImportError):
        import authlib.integrations.requests_client  # noqa: F401


class RedirectHandover:
    """In place of the listener when the redirect URI is not on this computer (DESIGN.md section 1, step 3).

    Nothing listens: the app's consent window catches the redirect before it is sent, or the
    person pastes the final URL, and either hands it to ``LoginFlow.submit_redirect_url``.
    """

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self._ended = threading.Event()

    def wait(self, timeout: float) -> NoReturn:
        """Block until a URL is handed over or the wait is cancelled (both end it), or the deadline."""
        if not self._ended.wait(max(0.0, timeout)):
            raise LoginTimeoutError(
                f"No sign-in response arrived within {timeout:g} seconds. "
                "Run the login again and finish signing in before the time limit."
            )
        raise LoginCancelledError("Sign-in cancelled. Run the login again to start over.")

    def cancel(self) -> None:
        """End the wait (a URL was handed over, or the person cancelled)."""
        self._ended.set()

    def report(self, ok: bool, message: str) -> None:
        """Nothing to tell: no page is waiting for the result."""

    def close(self) -> None:
        """End the wait; idempotent."""
        self._ended.set()


class LoginFlow:
    """One sign-in: ``start()`` binds the listener and returns the URL; ``wait()`` returns the token."""

    def __init__(
        self,
        profile: Profile,
        client_secret: str | None,
        *,
        store: TokenStore | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        session_factory: SessionFactory = authlib_session,
    ) -> None:
        self.profile = profile
        self._secret = client_secret
        self.store = store or TokenStore()
        self.timeout = timeout
        self._clock = clock
        self._session_factory = session_factory
        self._request = AuthRequest.new(profile)
        self._listener: CallbackListener | RedirectHandover | None = None
        self._pasted: str | None = None
        self._warm: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def redirect_uri(self) -> str:
        """The redirect URI sent to Zephr (with the bound port once started)."""
        return self._request.redirect_uri

    @property
    def url(self) -> str:
        """The authorize URL to open."""
        return self._request.url

    @property
    def listens(self) -> bool:
        """True when a loopback listener receives the redirect; False when it must be handed over."""
        return listens_on_loopback(self.profile.redirect_uri)

    def start(self) -> str:
        """Bind the listener (before anything is shown) and return the authorize URL."""
        if not self.listens:
            self._listener = RedirectHandover(self.profile.redirect_uri)
            log.debug("no listener: the redirect to %s is to be handed over; authorize URL ready", self.redirect_uri)
        else:
            # Imported here: http.server and its email/ssl imports cost ~20 ms that the app's start
            # and `token` never need.
            from .listener import CallbackListener

            listener = CallbackListener(self.profile.redirect_uri, expected_state=self._request.state)
            listener.start()
            self._listener = listener
            self._request = dataclasses.replace(self._request, redirect_uri=listener.redirect_uri)
            log.debug("listening on %s; authorize URL ready", listener.redirect_uri)
        self._warm = threading.Thread(target=_warm_up, name="zephr-warm-up", daemon=True)
        self._warm.start()
        return self._request.url

    def submit_redirect_url(self, url: str) -> None:
        """Accept the final redirect URL (pasted, or caught by the consent window); CallbackError if it is not one.

        Its state must be this sign-in's: a URL from another attempt (or forced on the window by
        a page) is refused and the wait goes on. An error from this sign-in (Deny) ends it, as a
        code does: ``wait()`` raises it.
        """
        try:
            self._request.code_from_url(url)  # validate first
        except AuthorizationError:
            # Checked before the state (error, state, code): only this sign-in's own error may end it.
            states = parse_qs(urlsplit(url.strip()).query, keep_blank_values=True).get("state") or []
            if len(states) != 1 or not hmac.compare_digest(states[0].encode(), self._request.state.encode()):
                raise CallbackError(
                    "The redirect does not belong to this sign-in (its state does not match). "
                    "Start the sign-in again and use the newest link."
                ) from None
        with self._lock:
            self._pasted = url
        if self._listener:
            self._listener.cancel()

    def cancel(self) -> None:
        """Stop waiting (from any thread); ``wait()`` raises LoginCancelledError."""
        if self._listener:
            self._listener.cancel()

    def wait(self) -> Token:
        """Wait for the callback, exchange the code, save and return the token."""
        if self._listener is None:
            self.start()
        listener = self._listener
        assert listener is not None
        try:
            try:
                callback = listener.wait(self.timeout)
                multi = callback.multi
                code_source = "callback"
            except LoginTimeoutError as exc:
                # Zephr shows its own error page (and never redirects) for an unregistered redirect URI.
                raise LoginTimeoutError(
                    f"{exc.message} If the sign-in page showed an error about the redirect URI, register "
                    f"{self.redirect_uri} on {registration(self.profile)}."
                ) from None
            except LoginCancelledError:
                with self._lock:
                    pasted = self._pasted
                if pasted is None:
                    raise
                multi = parse_qs(urlsplit(pasted.strip()).query, keep_blank_values=True)
                code_source = "redirect URL handed over"
            try:
                code = self._request.code_from(multi)
            except ZephrError as exc:
                listener.report(False, exc.message)
                raise
            log.debug("authorization code %s received from the %s", redact(code), code_source)
            try:
                token = exchange_code(
                    self.profile,
                    self._secret,
                    self._request,
                    code,
                    clock=self._clock,
                    session_factory=self._session_factory,
                )
                # Every save of a profile holds its lock, so tidy() elsewhere never takes a fresh secret.
                with self.store.refresh_lock(self.profile.name):
                    self.store.save(self.profile, token)
            except ZephrError as exc:
                listener.report(False, exc.message)
                raise
            listener.report(True, "Signed in. You can close this window and return to zephr-desktop.")
            return token
        finally:
            listener.close()
            if self._warm is not None:
                # A process that exits while a thread is still importing (cryptography's native code)
                # can abort; a quick Deny or Cancel must end cleanly.
                self._warm.join(10.0)


def _signed_out(profile: Profile, store: TokenStore) -> NotLoggedInError:
    why = store.signed_out_reason(profile) or f"No token for profile '{profile.name}'."
    return NotLoggedInError(f"{why} Run `zephr-desktop login --profile {profile.name}`.")


def ensure_fresh_token(
    profile: Profile,
    *,
    store: TokenStore | None = None,
    force: bool = False,
    clock: Callable[[], float] = time.time,
    session_factory: SessionFactory = authlib_session,
) -> Token:
    """A valid token for the profile, refreshed first (under the cross-process lock) when due."""
    store = store or TokenStore()
    cached = store.load_cached(profile)
    if cached is None:
        raise _signed_out(profile, store)
    if not force and not cached.token.needs_refresh(clock()):
        return cached.token
    asked_at = clock()
    with store.refresh_lock(profile.name):
        current = store.load(profile)
        if current is None:
            raise _signed_out(profile, store)
        # Another process may have refreshed while this one waited for the lock.
        if current.obtained_at >= asked_at or (not force and not current.needs_refresh(clock())):
            log.debug("token was refreshed by another process; using it")
            return current
        if not current.refresh_token:
            store.check_refresh_token_reachable(profile)
            why = "has expired" if current.is_expired(clock()) else "cannot be refreshed"
            raise NotLoggedInError(
                f"The token for profile '{profile.name}' {why} and {server_name(profile, profile.token_url)} gave "
                "no refresh token. "
                f"Run `zephr-desktop login --profile {profile.name}`."
            )
        new = refresh(
            profile, store.get_client_secret(profile.name), current, clock=clock, session_factory=session_factory
        )
        store.save(profile, new)
        store.tidy(profile.name)
        return new


def refresh_token_now(
    profile: Profile, *, store: TokenStore | None = None, session_factory: SessionFactory = authlib_session
) -> Token:
    """Refresh now, whatever the expiry (under the same lock)."""
    return ensure_fresh_token(profile, store=store, force=True, session_factory=session_factory)


__all__ = ["DEFAULT_TIMEOUT", "CallbackError", "LoginFlow", "ensure_fresh_token", "refresh_token_now"]
