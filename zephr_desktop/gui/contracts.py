"""What the main window's session needs from the window layer, as types without Qt.

``Shell`` is the window side of the app as the session and the page's bridge use it (pushing
events to the page, the consent window, the clipboard, the system browser);
``ConsentHandle`` is an open consent window as the session holds it; ``ConsentHooks`` is what
the consent window tells the sign-in in progress and what it must catch. The Qt window
implements them; the tests implement them with fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..profile import Profile


class ConsentHandle(Protocol):
    """What the session needs of an open consent window."""

    def close(self) -> None:
        """Close it from the app (not a cancel)."""


@dataclass(frozen=True)
class ConsentHooks:
    """What the consent window tells the session, and what it must catch."""

    on_user_close: Callable[[], None]  # the person closed the window: cancel
    continue_in_browser: Callable[[], None] | None  # None: the system browser cannot finish this sign-in
    catch_redirect: str | None  # the redirect URI to catch in the window (no listener), or None
    hand_over: Callable[[str], str | None]  # a caught redirect URL for the sign-in; returns why it was refused


class Shell(Protocol):
    """The window side of the app, as the session and the bridge use it."""

    def push(self, event: dict[str, Any]) -> None:
        """Tell the page something changed (it then asks for the state)."""

    def open_consent(self, url: str, profile: Profile, hooks: ConsentHooks) -> ConsentHandle:
        """Open the consent window on ``url``; it calls ``hooks`` (e.g. if the person closes it)."""

    def copy_text(self, text: str) -> float | None:
        """Put ``text`` on the system clipboard; returns after how many seconds it is cleared, if it is."""

    def open_browser(self, url: str) -> None:
        """Open ``url`` in the system browser."""

    def browser_only(self) -> str | None:
        """Why sign-ins go to the system browser here instead of the consent window (None: they do not)."""
