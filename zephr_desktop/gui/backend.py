"""Which web view pywebview runs on, and whether the consent window can be isolated on it.

The consent window's isolation (DESIGN.md section 4: a page with no bridge, following http
and https only, a private cookie store of its own) is built from QtWebEngine objects
(``consent.py``, ``qt.py``). pywebview picks its backend at ``webview.start()`` and falls back
to another one when the one asked for cannot load (Qt to GTK on Linux, Qt to Cocoa on macOS),
so the decision is taken from the backend that actually runs, after start, not from
``sys.platform``. On any other backend the site would have to load in a pywebview window,
which carries the bridge: there the sign-in goes to the system browser instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QT_MODULE = "webview.platforms.qt"
ISOLATING_RENDERER = "qtwebengine"

_NAMES = {
    "webview.platforms.qt": "Qt",
    "webview.platforms.gtk": "GTK",
    "webview.platforms.cocoa": "Cocoa",
    "webview.platforms.winforms": "WinForms",
    "webview.platforms.android": "Android",
}


@dataclass(frozen=True)
class Backend:
    """The GUI backend pywebview chose (its platform module) and its web renderer."""

    module: str | None
    renderer: str | None

    @property
    def is_qt(self) -> bool:
        """pywebview's Qt backend (the Qt fixes in ``qt.py`` apply to it)."""
        return self.module == QT_MODULE

    @property
    def label(self) -> str:
        """How the README and the status line name it, e.g. ``Cocoa (wkwebview)``."""
        name = _NAMES.get(self.module or "", self.module or "an unknown web view")
        return f"{name} ({self.renderer})" if self.renderer else name

    def browser_only_reason(self) -> str | None:
        """Why sign-ins go to the system browser on this backend, or None when the consent window is safe."""
        if self.is_qt and self.renderer == ISOLATING_RENDERER:
            return None
        return (
            f"Sign-in opens in your browser: the app's own sign-in window is only isolated on Qt WebEngine, "
            f"and this system runs {self.label}."
        )


def running_backend(webview: Any, window: Any = None) -> Backend:
    """The backend of a started pywebview (``webview.guilib``), checked against the window's native object."""
    guilib = getattr(webview, "guilib", None)
    module = getattr(guilib, "__name__", None)
    renderer = getattr(webview, "renderer", None) or getattr(guilib, "renderer", None)
    native = getattr(window, "native", None) if window is not None else None
    if native is not None and module is not None and not type(native).__module__.startswith(module):
        module = type(native).__module__  # trust what the window is made of
    return Backend(module if isinstance(module, str) else None, renderer if isinstance(renderer, str) else None)
