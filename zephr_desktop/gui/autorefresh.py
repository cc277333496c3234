"""Automatic refresh for the main window: renew the shown token before it expires, notice outside changes.

No Qt and no thread here: ``AutoRefresh.check`` is one look, run by the session's watcher;
the clock is a parameter, so tests advance a fake clock instead of waiting for a token to age.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidClientError, InvalidGrantError, ZephrError
from ..oauth import Token
from ..profile import Profile
from ..store import TokenStore

AUTO_REFRESH_RETRY = 30.0  # seconds before retrying a failed automatic refresh of the same token
AUTO_FAILED = "Automatic refresh failed"


@dataclass(frozen=True)
class Checked:
    """What one auto-refresh check found: the event to push, and an error to show if it failed."""

    event: str  # "token_changed" or "refresh_failed"
    error: str | None = None
    refreshed: bool = False


class AutoRefresh:
    """Refreshes a profile's token before it expires, and notices tokens changed by other processes."""

    def __init__(self, store: TokenStore, clock: Callable[[], float], retry_after: float = AUTO_REFRESH_RETRY) -> None:
        self._store = store
        self._clock = clock
        self._retry_after = retry_after
        self._lock = threading.Lock()
        self._enabled = True
        self._seen: dict[str, float] = {}  # profile -> obtained_at of the token the page last drew
        self._failed: tuple[str, float, float] | None = None  # (profile, token obtained_at, retry at)

    @property
    def enabled(self) -> bool:
        """Whether tokens are refreshed before they expire."""
        return self._enabled

    def set_enabled(self, on: bool) -> None:
        """Turn refreshing on or off (a failure waiting for its retry is forgotten)."""
        with self._lock:
            self._enabled = on
            self._failed = None

    def shown(self, name: str, token: Token) -> None:
        """The page now shows this token: not a change to report."""
        with self._lock:
            self._seen[name] = token.obtained_at

    def forget(self, name: str) -> None:
        """The profile's token went away in this process: not a change to report."""
        with self._lock:
            self._seen.pop(name, None)

    def clear_failure(self) -> None:
        """A new token came (a sign-in): a failed refresh no longer holds back the next one."""
        with self._lock:
            self._failed = None

    def check(self, name: str, profile_of: Callable[[str], Profile]) -> Checked | None:
        """One look at the profile's token: report a change, refresh it if due; None if nothing happened."""
        try:
            profile = profile_of(name)
            cached = self._store.load_cached(profile)
        except ZephrError:
            return None
        with self._lock:
            if cached is None:
                return Checked("token_changed") if self._seen.pop(name, None) is not None else None
            token = cached.token
            changed = self._seen.get(name) != token.obtained_at
            self._seen[name] = token.obtained_at
            now = self._clock()
            due = self._enabled and cached.has_refresh and token.needs_refresh(now)
            failed = self._failed
        if due and failed and failed[:2] == (name, token.obtained_at) and now < failed[2]:
            due = False
        if not due:
            return Checked("token_changed") if changed else None
        try:
            from ..login import ensure_fresh_token  # imported at the first refresh, not at the app's start

            fresh = ensure_fresh_token(profile, store=self._store, clock=self._clock)
        except ZephrError as exc:
            # A refused grant (dead refresh token, revoked client) will not heal by retrying.
            hopeless = isinstance(exc, InvalidGrantError | InvalidClientError)
            with self._lock:
                self._failed = (name, token.obtained_at, float("inf") if hopeless else now + self._retry_after)
            return Checked("refresh_failed", error=f"{AUTO_FAILED}: {exc.message}")
        with self._lock:
            self._seen[name] = fresh.obtained_at
            self._failed = None
        return Checked("token_changed", refreshed=True)
