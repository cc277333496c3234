"""The consent window: the site's login and consent pages in a window of their own (DESIGN.md section 4).

- No ``js_api``, and no pywebview page at all: the window's page is replaced before it is
  shown by a plain ``QWebEnginePage`` with no web channel, so the remote page cannot reach
  the Python bridge (pywebview would inject it into any page of a window that has one).
- It follows http and https only: a link to ``zoommtg:``, ``mailto:``, ``file:`` or any other
  scheme is refused instead of being handed to the desktop (``qt.follow_only_web``), and a
  dropped URL does not load.
- The title shows the current origin and the scheme, updated on each navigation: hosts in
  punycode (with the Unicode form beside), and pages without a web origin marked as such
  (``origin.format_title``).
- Cookies: a fresh off-the-record ``QWebEngineProfile`` per window (pywebview's
  ``private_mode`` is one global switch), or a persistent per-profile storage folder when
  the profile keeps its site session.
- Popups the sign-in page opens (``window.open``, ``target=_blank``: social sign-in) get a
  child window under the same rules, in the same profile (so the opener sees the session they
  sign in), titled with their own origin; they close with the sign-in (``popups``).
- When the redirect URI is not on this computer (no listener), every request for it is
  stopped before it is sent (navigations, server redirects and any other request) and the
  URL goes to the sign-in, which takes it only if its state is this sign-in's.
- A bar above the page (the app's, not the page's) offers "Continue in your browser": the
  same sign-in (state, PKCE, listener) goes on in the system browser and the window closes.
- Closing it by hand calls ``hooks.on_user_close`` (the flow is cancelled); ``close()`` from
  the app does not.
"""

from __future__ import annotations

import functools
import html
import logging
import string
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fileutil import ensure_private_dir
from ..resources import asset_text
from .origin import TITLE_SUFFIX, RedirectTarget, format_title
from .popups import Popups
from .qt import GuiThread, catch_navigations, deny_page_permissions, follow_only_web, redirect_interceptor

if TYPE_CHECKING:
    from .contracts import ConsentHooks

log = logging.getLogger(__name__)

BROWSER_BUTTON = "Trouble signing in here? Continue in your browser \u2197"
_BLANK = "<!doctype html><title>Sign in to Zephr</title><body style='background:#f6f7f9'></body>"


@functools.lru_cache(maxsize=1)
def _result_template() -> string.Template:
    try:
        return string.Template(asset_text("result.html"))
    except (OSError, UnicodeDecodeError):  # a broken install: the page must still say something
        return string.Template("<!doctype html><title>$title</title><main class='$tone'><h1>$title</h1><p>$message")


def result_page(title: str, message: str, tone: str) -> str:
    """The app's own small page for the consent window (every value HTML-escaped)."""
    values = {"title": title, "message": message, "tone": tone}
    return _result_template().safe_substitute({k: html.escape(v) for k, v in values.items()})


class ConsentWindow:
    """One consent window for one sign-in, with the popups its pages open."""

    def __init__(
        self,
        url: str,
        *,
        gui: GuiThread,
        hooks: ConsentHooks,
        storage_dir: Path | None = None,
        width: int = 560,
        height: int = 760,
    ) -> None:
        self._url = url
        self._gui = gui
        self._hooks = hooks
        self._target = RedirectTarget.of(hooks.catch_redirect) if hooks.catch_redirect else None
        self._storage_dir = storage_dir
        self._size = (width, height)
        self._window: Any = None
        self._page: Any = None
        self._profile: Any = None
        self._interceptor: Any = None
        self._live_pages = 0
        self._popups = Popups(self._popup_parent, self._new_page, self._retitle)
        self._handed_over = False
        self._closing_by_app = False
        self._closing = False
        self._closed = threading.Event()

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        """Create the window (from a worker thread); the URL loads only once its own page is in place."""
        import webview

        width, height = self._size
        window = webview.create_window(
            TITLE_SUFFIX, html=_BLANK, width=width, height=height, min_size=(420, 480), background_color="#f6f7f9"
        )
        if window is None:
            raise RuntimeError("pywebview could not create the consent window")
        window.events.closing += self._on_closing
        window.events.closed += self._on_closed
        self._window = window
        # After start(), create_window() has already queued the window's construction on the GUI
        # thread, so a before_show handler added now could come too late. This job is queued
        # behind it instead, and finds the window built.
        self._gui.call(lambda: self._install(window))

    def _install(self, window: Any) -> None:
        if getattr(window, "native", None) is None:  # not built yet: then before_show is still ahead
            window.events.before_show += self._install
            return
        if self._page is None:
            self._swap_page(window)

    def close(self) -> None:
        """Close the window and its popups from the app (the flow ended); does not call ``on_user_close``."""
        self._closing_by_app = True
        window = self._window
        if window is None or self._closed.is_set():
            return
        try:
            window.destroy()
        except Exception:  # already gone
            log.debug("consent window was already closed", exc_info=True)

    @property
    def is_open(self) -> bool:
        """True from ``open()`` until the window is gone."""
        return self._window is not None and not self._closed.is_set()

    def _swap_page(self, window: Any) -> None:
        from qtpy.QtCore import QUrl
        from qtpy.QtWebEngineCore import QWebEngineProfile

        native = window.native
        profile = self._profile = self._make_profile(native, QWebEngineProfile)
        if self._target is not None:
            # For the whole profile: popups' requests, and requests that are not navigations, too.
            self._interceptor = redirect_interceptor(self._target.matches, self._caught_soon, profile)
            profile.setUrlRequestInterceptor(self._interceptor)
        page = self._new_page(native.webview)
        page.urlChanged.connect(lambda _url: self._retitle(native, page, TITLE_SUFFIX))
        page.loadFinished.connect(lambda _ok: self._retitle(native, page, TITLE_SUFFIX))
        old = native.webview.page()
        native.webview.setPage(page)
        native.setWindowTitle(TITLE_SUFFIX)
        if old is not None and old is not page:
            old.deleteLater()
        self._page = page
        if self._hooks.continue_in_browser is not None:
            self._add_browser_bar(native)
        page.load(QUrl(self._url))

    def _new_page(self, parent: Any) -> Any:
        """A page in the sign-in's profile, under the consent window's rules."""
        from qtpy.QtWebEngineCore import QWebEnginePage

        page: Any = QWebEnginePage(self._profile, parent)
        # The engine asks createWindow() first, without the URL; refused there, it asks again through
        # newWindowRequested, with it: popups are opened (or refused) there.
        page.createWindow = lambda _kind: None
        page.newWindowRequested.connect(self._popups.on_new_window)
        deny_page_permissions(page)
        follow_only_web(page)
        if self._target is not None:
            catch_navigations(page, self._target.matches, self._caught_soon)
        self._live_pages += 1
        page.destroyed.connect(self._page_gone)
        return page

    def _page_gone(self, *_args: Any) -> None:
        # The profile must outlive its pages ("Release of profile requested but WebEnginePage still not deleted").
        self._live_pages -= 1
        if self._live_pages == 0 and self._profile is not None:
            self._profile.deleteLater()
            self._profile = None

    def _make_profile(self, native: Any, profile_cls: Any) -> Any:
        if self._storage_dir is None:
            return profile_cls(native)  # no storage name: off the record, gone with the window
        ensure_private_dir(self._storage_dir.parent)
        ensure_private_dir(self._storage_dir)
        profile = profile_cls(f"zephr-site-{self._storage_dir.name}", native)
        profile.setPersistentStoragePath(str(self._storage_dir))
        profile.setCachePath(str(self._storage_dir / "cache"))
        # A site's sign-in is usually a session cookie: keep those too, or "keep session" would keep nothing.
        profile.setPersistentCookiesPolicy(profile_cls.PersistentCookiesPolicy.ForcePersistentCookies)
        return profile

    def _retitle(self, widget: Any, page: Any, suffix: str) -> None:
        try:
            from qtpy.QtCore import QUrl

            url = page.url()
            host = url.host(QUrl.ComponentFormattingOption.EncodeUnicode)  # punycode, never Unicode
            widget.setWindowTitle(format_title(url.scheme(), host, url.port(), suffix))
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not update the sign-in window title")

    # -- popups ------------------------------------------------------------------------
    def _popup_parent(self) -> Any:
        """The native window popups open under, or None while none may open (closing, or the profile gone)."""
        if self._closing or self._profile is None:
            return None
        return self._window.native

    # -- the redirect, caught ---------------------------------------------------------------
    def _caught_soon(self, url: str) -> None:
        # Called inside the engine's own check: hand the URL over once that has returned.
        self._gui.post(lambda: self._caught(url))

    def _caught(self, url: str) -> None:
        if self._closing or self._page is None:
            return
        if self._handed_over:
            log.warning("stopped another redirect after the sign-in's own")
            return
        why = self._hooks.hand_over(url)
        if why is None:
            self._handed_over = True
            self._show(
                "Authorization received",
                "Authorization received - the app is finishing the sign-in. This window closes by itself.",
                "info",
            )
        else:
            self._show("Not the sign-in in progress", why, "error")

    def _show(self, title: str, message: str, tone: str) -> None:
        try:
            self._page.setHtml(result_page(title, message, tone))
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not show the sign-in window's message")

    # -- continue in the browser ---------------------------------------------------------
    def _add_browser_bar(self, native: Any) -> None:
        """The app's own bar above the page (no page can draw there): one wide button."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QPushButton, QSizePolicy, QToolBar

        bar = QToolBar("Sign-in", native)
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)  # no way to hide it by accident
        button = QPushButton(BROWSER_BUTTON, bar)
        button.setObjectName("continue-in-browser")
        button.setToolTip("Carry on with this same sign-in in your system browser; this window closes.")
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        button.setStyleSheet("QPushButton { padding: 6px 12px; font-weight: 600; }")
        button.clicked.connect(self._continue_in_browser)
        bar.addWidget(button)
        native.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def _continue_in_browser(self, *_args: Any) -> None:
        hook = self._hooks.continue_in_browser
        if hook is None or self._closing:
            return

        def run() -> None:
            from ..errors import ZephrError

            try:
                hook()
            except ZephrError as exc:
                log.warning("could not continue in the browser: %s", exc.message)
            except Exception as exc:
                log.error("could not continue in the browser: %s", type(exc).__name__)

        # It closes this window and starts a browser: off the GUI thread.
        threading.Thread(target=run, name="zephr-continue-in-browser", daemon=True).start()

    # -- closing ------------------------------------------------------------------------------
    def _on_closing(self) -> None:
        self._closing = True
        self._popups.close_all()  # on the GUI thread, before the window's own page goes
        if not self._closing_by_app:
            # Cancelling closes the listener; keep that off the GUI thread.
            threading.Thread(target=self._hooks.on_user_close, name="zephr-consent-closed", daemon=True).start()

    def _on_closed(self) -> None:
        self._closed.set()
