"""A sign-in from the main window, start to end: the listener, the consent window or browser, the wait.

``SignIn`` drives the main window's sign-ins, at most one at a time (``current``, an
``_Attempt``): it starts the ``LoginFlow``, opens the consent window (or the system browser)
through the ``Shell``, waits for the callback on a background thread, hands over a redirect
the consent window caught, moves a sign-in to the browser, and at the end tells the page and
sets the session's messages. It shares the session's lock, so the session reads ``current``
consistently with its own state.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import LoginCancelledError, ZephrError
from ..profile import Profile
from ..store import TokenStore
from .autorefresh import AutoRefresh
from .contracts import ConsentHandle, ConsentHooks, Shell

if TYPE_CHECKING:
    from ..login import LoginFlow

log = logging.getLogger(__name__)


@dataclass
class _Attempt:
    """The sign-in in progress."""

    flow: LoginFlow
    consent: ConsentHandle | None = None
    in_browser: bool = False
    closed_by_user: bool = False


class SignIn:
    """The main window's sign-ins: at most one in progress (``current``), from its start to its end."""

    def __init__(
        self,
        shell: Shell,
        store: TokenStore,
        auto: AutoRefresh,
        *,
        lock: threading.RLock,
        set_messages: Callable[[str | None, str | None], None],
        clock: Callable[[], float],
        login_timeout: float,
    ) -> None:
        self._shell = shell
        self._store = store
        self._auto = auto
        self._lock = lock  # the session's: ``current`` changes together with its messages
        self._set_messages = set_messages  # the session's error and notice, called holding the lock
        self._clock = clock
        self._login_timeout = login_timeout
        self.current: _Attempt | None = None

    def start(self, profile: Profile) -> None:
        """Bind the listener, open the consent window, and wait for the callback in the background."""
        # Read before taking the lock: a keyring may block on an unlock prompt.
        secret = self._store.get_client_secret(profile.name)
        in_browser = self._shell.browser_only() is not None  # no isolated consent window on this backend
        with self._lock:
            if self.current is not None:
                raise ZephrError("A sign-in is already waiting for you to click Allow.")
            from ..login import LoginFlow  # the app's start does not need the sign-in's modules

            flow = LoginFlow(profile, secret, store=self._store, timeout=self._login_timeout, clock=self._clock)
            if in_browser and not flow.listens:
                # The browser would deliver the code to the third party itself; only the Qt window can catch it.
                raise ZephrError(
                    f"This profile's redirect URI ({flow.redirect_uri}) is not on this computer, and on this "
                    "platform the app cannot catch it in its own window. Use `zephr-desktop login` and paste "
                    "the final address, or register a loopback redirect URI."
                )
            self._set_messages(None, None)
            url = flow.start()  # the listener is bound before the page is shown
            signin = self.current = _Attempt(flow, in_browser=in_browser)
        threading.Thread(target=self._wait, args=(signin, profile), name="zephr-sign-in", daemon=True).start()
        hooks = ConsentHooks(
            on_user_close=functools.partial(self._consent_closed, signin),
            continue_in_browser=functools.partial(self._continue_in_browser, signin) if flow.listens else None,
            catch_redirect=None if flow.listens else flow.redirect_uri,
            hand_over=functools.partial(self._hand_over, signin),
        )
        try:
            if in_browser:
                self._shell.open_browser(url)
                return
            consent = self._shell.open_consent(url, profile, hooks)
        except BaseException:
            flow.cancel()  # free the port now rather than when the wait times out
            raise
        with self._lock:
            if self.current is signin and not signin.in_browser:
                signin.consent = consent
                return
        consent.close()  # the sign-in already ended (or moved to the browser)

    def listening_on(self) -> str | None:
        """The redirect URI the sign-in in progress listens on (None when none is in progress)."""
        with self._lock:
            return self.current.flow.redirect_uri if self.current is not None else None

    def cancel(self) -> None:
        """Stop waiting for the callback (listener closed, port freed)."""
        with self._lock:
            signin = self.current
        if signin is not None:
            signin.flow.cancel()

    def continue_in_browser(self) -> None:
        """Carry on the sign-in in progress in the system browser (same state, PKCE and listener)."""
        with self._lock:
            signin = self.current
        if signin is None:
            raise ZephrError("No sign-in is in progress. Press Sign in first.")
        self._continue_in_browser(signin)

    def _continue_in_browser(self, signin: _Attempt) -> None:
        if not signin.flow.listens:
            # The browser would send the code to that site, and nothing here would receive it.
            raise ZephrError(
                f"This profile's redirect URI ({signin.flow.redirect_uri}) is not on this computer, so the system "
                "browser cannot hand the sign-in back to the app: finish it in the sign-in window, or run "
                "`zephr-desktop login --browser` and paste the final address."
            )
        with self._lock:
            if self.current is not signin:
                raise ZephrError("That sign-in has already ended. Press Sign in to start again.")
            signin.in_browser = True
            consent, signin.consent = signin.consent, None
        if consent is not None:
            consent.close()
        self._shell.open_browser(signin.flow.url)
        self._shell.push({"type": "sign_in_in_browser"})

    def _hand_over(self, signin: _Attempt, url: str) -> str | None:
        """A redirect the consent window caught: the sign-in's if its state matches (else why not)."""
        with self._lock:
            if self.current is not signin:
                return "This sign-in is no longer in progress. Return to the app and sign in again."
        try:
            signin.flow.submit_redirect_url(url)
        except ZephrError as exc:
            log.warning("refused a redirect caught in the sign-in window: %s", type(exc).__name__)
            return exc.message
        return None

    def _consent_closed(self, signin: _Attempt) -> None:
        with self._lock:
            if self.current is not signin or signin.in_browser:
                return
            signin.closed_by_user = True
            signin.consent = None
        signin.flow.cancel()

    def _wait(self, signin: _Attempt, profile: Profile) -> None:
        error: str | None = None
        notice: str | None = None
        event = "signed_in"
        try:
            signin.flow.wait()
            notice = f"Signed in to {profile.site_url}."
        except LoginCancelledError:
            # The person's own choice: said in the status line, not as an error.
            event = "sign_in_cancelled"
            with self._lock:
                by_window = signin.closed_by_user
            notice = "Sign-in cancelled: the sign-in window was closed." if by_window else "Sign-in cancelled."
        except ZephrError as exc:
            event, error = "sign_in_failed", exc.message
        except Exception as exc:
            log.error("sign-in failed: %s", type(exc).__name__)
            event, error = "sign_in_failed", f"Sign-in failed unexpectedly ({type(exc).__name__}). Try again."
        with self._lock:
            consent = None
            if self.current is signin:
                consent, self.current = signin.consent, None
            self._set_messages(error, notice)
        self._auto.clear_failure()
        # The page first: closing a window keeps the GUI thread busy while the page waits for its new state.
        self._shell.push({"type": event})
        if consent is not None:
            consent.close()

    def shutdown(self) -> None:
        """Cancel the sign-in in progress and close its consent window (the main window is closing)."""
        with self._lock:
            signin = self.current
            consent = signin.consent if signin is not None else None
            if signin is not None:
                signin.consent = None
        if signin is not None:
            signin.flow.cancel()
        if consent is not None:
            consent.close()
