"""The window side of the app: ``DesktopShell``, the main window, the app icon and the page's first state.

``create_main_window`` makes the main window on the app's own page, which reaches Python
only through ``api.page_functions``. ``DesktopShell`` is what the session and the bridge
see of the windows (``contracts.Shell``): it applies the Qt fixes in the main window's
``before_show`` (``qt.deny_page_permissions``: pywebview's permission handler aborts the
process under PyQt6; ``qt.confine_to_app_page``: the bridge stays on the app's page), pushes
events to the page in order, opens the consent window, sets and clears the clipboard, and
brings the window to the front. Qt and pywebview are imported only inside the functions.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..desktop_entry import APP_ID, ICON_THEME
from ..errors import ZephrError
from ..profile import Profile
from ..resources import assets_dir
from ..store import TokenStore
from .api import NO_ATTRIBUTES, page_functions
from .backend import Backend, running_backend
from .contracts import ConsentHooks
from .qt import GuiThread, confine_to_app_page, deny_page_permissions
from .session import Session

if TYPE_CHECKING:
    from .consent import ConsentWindow

log = logging.getLogger(__name__)

APP_TITLE = "Zephr Desktop"
WINDOW_SIZE = (920, 760)
MIN_SIZE = (640, 560)
CLIPBOARD_CLEAR_AFTER = 120.0  # seconds; cleared only if the clipboard still holds what we put there


def app_icon() -> Any:
    """The app icon as a ``QIcon`` holding every shipped PNG size (16 to 512 pixels)."""
    from qtpy.QtCore import QSize
    from qtpy.QtGui import QIcon

    icon = QIcon()
    for png in sorted((assets_dir() / "icons" / ICON_THEME).glob(f"*/apps/{APP_ID}.png")):
        side = int(png.parent.parent.name.split("x", 1)[0])
        icon.addFile(str(png), QSize(side, side))
    return icon


def _set_app_icon(app: Any) -> None:
    try:
        app.setWindowIcon(app_icon())
    except Exception:  # an exception escaping a slot would abort the process
        log.exception("could not set the app icon")


def site_session_dir(profile: Profile) -> Path:
    """Where a profile that keeps its site session stores the consent window's cookies."""
    return TokenStore().site_session_dir(profile.name)


class DesktopShell:
    """The window side of the app as the session and the bridge see it (see ``contracts.Shell``)."""

    def __init__(self, clear_after: float | None = CLIPBOARD_CLEAR_AFTER) -> None:
        self.window: Any = None
        self.gui: GuiThread | None = None
        self.consent: ConsentWindow | None = None
        self.backend: Backend | None = None
        self.ready = threading.Event()  # set once the main window is about to show
        self.clear_after = clear_after
        # The page's state() function: each pushed event carries the state, saving the page a call back.
        self.describe: Callable[[], dict[str, Any]] | None = None
        # The page's init(): its answer is handed to the page as it loads (``seed_first_state``).
        self.describe_first: Callable[[], dict[str, Any]] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pusher = threading.Thread(target=self._push_loop, name="zephr-push", daemon=True)
        self._pusher.start()

    def attach(self, window: Any) -> None:
        """Called on the GUI thread in the main window's ``before_show``."""
        import webview

        self.window = window
        self.backend = running_backend(webview, window)
        if not self.backend.is_qt:
            # Another backend than the one asked for (pywebview fell back): none of the Qt parts apply,
            # and sign-ins go to the system browser (see ``browser_only``).
            log.warning("pywebview runs on %s: sign-ins open in the system browser", self.backend.label)
            self.ready.set()
            return
        self.gui = GuiThread()
        page = window.native.webview.page()
        deny_page_permissions(page)
        confine_to_app_page(page, str(window.real_url), self._open_link)
        if self.describe_first is not None:
            seed_first_state(page, self.describe_first())
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if isinstance(app, QApplication):
            # WM_CLASS (X11) and the app id (Wayland) come from these names: the menu entry's
            # StartupWMClass and file name must match them for docks to group the windows.
            app.setApplicationName(APP_ID)
            app.setDesktopFileName(APP_ID)
            # Every window without its own icon shows this one. Its nine sizes are decoded and handed to the
            # window manager on the GUI thread (~25 ms): done just after the window shows, while the page loads.
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, lambda: _set_app_icon(app))
        self.ready.set()

    def close(self) -> None:
        """Stop the event pusher."""
        self._events.put(None)

    # -- contracts.Shell -------------------------------------------------------------------
    def push(self, event: dict[str, Any]) -> None:
        """Queue an event for the page; one thread delivers them in order."""
        self._events.put(event)

    def _push_loop(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            window = self.window
            if window is None:
                continue
            try:
                if self.describe is not None:
                    event = {**event, "state": self.describe()}
                window.evaluate_js(f"window.zephrPush && window.zephrPush({json.dumps(event)})")
            except Exception as exc:  # the window may be closing
                log.debug("could not push %s: %s", event.get("type"), type(exc).__name__)

    def open_consent(self, url: str, profile: Profile, hooks: ConsentHooks) -> ConsentWindow:
        """Open the sign-in window on ``url``."""
        assert self.gui is not None
        storage = site_session_dir(profile) if profile.keep_site_session else None
        from .consent import ConsentWindow  # imported at the first sign-in, not at the app's start

        consent = ConsentWindow(url, gui=self.gui, hooks=hooks, storage_dir=storage)
        self.consent = consent
        consent.open()
        return consent

    def copy_text(self, text: str) -> float | None:
        """Set the system clipboard on the GUI thread; clear it later if it still holds ``text``."""
        if self.gui is None:
            raise ZephrError("Copying needs the Qt web view; select the token and copy it by hand.")
        clear_after = self.clear_after

        def copy() -> None:
            from qtpy.QtCore import QTimer
            from qtpy.QtWidgets import QApplication

            clipboard = QApplication.clipboard()
            if clipboard is None:
                raise RuntimeError("the system clipboard is not available")
            clipboard.setText(text)
            if clear_after:

                def clear() -> None:
                    if clipboard.text() == text:
                        clipboard.clear()

                QTimer.singleShot(int(clear_after * 1000), clear)

        self.gui.call(copy)
        return clear_after

    def open_browser(self, url: str) -> None:
        """Open ``url`` in the system browser."""
        import webbrowser  # only for 'Open in browser instead' and links

        webbrowser.open(url)

    def browser_only(self) -> str | None:
        """Why sign-ins go to the system browser: the backend that runs cannot isolate the consent window."""
        if self.backend is None:
            return "Sign-in opens in your browser: the window is still starting."
        return self.backend.browser_only_reason()

    def bring_to_front(self) -> None:
        """Show the main window if minimized, raise it and give it the focus (another launch asked for it)."""
        window = self.window
        if window is None:
            return
        if self.gui is None:  # not Qt: pywebview's own calls
            window.restore()
            window.show()
            return

        def front() -> None:
            native = window.native
            if native.isMinimized():
                native.showNormal()
            native.show()
            native.raise_()
            native.activateWindow()

        self.gui.call(front)

    def _open_link(self, url: str) -> None:
        # Called on the GUI thread; a browser command may take its time to return.
        threading.Thread(target=self.open_browser, args=(url,), name="zephr-open-link", daemon=True).start()


def seed_first_state(page: Any, first: dict[str, Any]) -> None:
    """Give the app's page its first state (what ``init()`` answers) as it loads (runs on the GUI thread).

    A script run as the page's document is created, in the page's own world, sets
    ``window.zephrFirst``; the page draws itself from it while its scripts run, instead of
    asking ``init()`` over the bridge once the bridge is ready (after the load, then a round
    trip through the GUI thread). Only for the first load: a reload asks ``init()``.
    """
    from qtpy.QtWebEngineCore import QWebEngineScript

    script = QWebEngineScript()
    script.setName("zephr-first-state")
    script.setSourceCode(f"window.zephrFirst = {json.dumps(first)};")
    script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
    script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)
    script.setRunsOnSubFrames(False)
    page.scripts().insert(script)

    def forget(_ok: bool) -> None:
        try:
            page.scripts().remove(script)
            page.loadFinished.disconnect(forget)
        except Exception:  # an exception escaping a slot would abort the process
            log.debug("could not remove the first-state script", exc_info=True)

    page.loadFinished.connect(forget)


def create_main_window(session: Session, shell: DesktopShell) -> Any:
    """The main window on the app's page; the page reaches Python only through ``page_functions``."""
    import webview

    window = webview.create_window(
        APP_TITLE,
        url=str(assets_dir() / "index.html"),
        # pywebview looks names up on js_api with getattr along any dotted path: give it nothing to walk.
        js_api=NO_ATTRIBUTES,
        width=WINDOW_SIZE[0],
        height=WINDOW_SIZE[1],
        min_size=MIN_SIZE,
        background_color="#f4f5f7",
        text_select=True,  # pywebview's default blocks selecting text (user id, test results)
    )
    if window is None:
        raise RuntimeError("pywebview could not create the main window")
    functions = page_functions(session, shell)
    window.expose(*functions)  # found by exact name only
    shell.describe = next(fn for fn in functions if fn.__name__ == "state")
    shell.describe_first = next(fn for fn in functions if fn.__name__ == "init")
    window.events.before_show += shell.attach
    window.events.closed += session.shutdown
    return window
