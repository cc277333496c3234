"""The consent window: the site's login and consent pages in a window of their own (DESIGN.md section 4).

- No ``js_api``, and no pywebview page at all: the window's page is replaced before it is
  shown by a plain ``QWebEnginePage`` with no web channel, so the remote page cannot reach
  the Python bridge (pywebview would inject it into any page of a window that has one).
- It follows http and https only: a link to ``zoommtg:``, ``mailto:``, ``file:`` or any other
  scheme is refused instead of being handed to the desktop (``qt.follow_only_web``), and a
  dropped URL does not load.
- The title shows the current origin and the scheme, updated on each navigation: hosts in
  punycode (with the Unicode form beside), and pages without a web origin marked as such.
- Cookies: a fresh off-the-record ``QWebEngineProfile`` per window (pywebview's
  ``private_mode`` is one global switch), or a persistent per-profile storage folder when
  the profile keeps its site session.
- Closing it by hand calls ``on_user_close`` (the flow is cancelled); ``close()`` from the
  app does not.
"""

from __future__ import annotations

import encodings.idna
import logging
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..fileutil import ensure_private_dir
from .qt import GuiThread, deny_page_permissions, follow_only_web

log = logging.getLogger(__name__)

TITLE_SUFFIX = "Sign in to Zephr"
_BLANK = "<!doctype html><title>Sign in to Zephr</title><body style='background:#f6f7f9'></body>"


UNTRUSTED = "(no trustworthy origin)"
_WEB_PORTS = {"http": 80, "https": 443}


def _unicode_host(ace: str) -> str | None:
    """The Unicode form of a punycode (``xn--``) host, or None when it has none that can be shown safely."""
    labels = ace.split(".")
    if not any(label.lower().startswith("xn--") for label in labels):
        return None
    try:
        shown = ".".join(
            label[4:].encode("ascii").decode("punycode") if label.lower().startswith("xn--") else label
            for label in labels
        )
    except (UnicodeError, ValueError):
        return None
    # Direction overrides, joiners and other invisible characters would make the "readable" form lie.
    if any(unicodedata.category(ch)[0] in "CZ" for ch in shown):
        return None
    return shown


def _ace_host(host: str) -> str:
    """``host`` with every international label in punycode (Qt gives it so; this covers a Unicode one)."""
    if host.isascii():
        return host
    try:
        return ".".join(encodings.idna.ToASCII(label).decode("ascii") if label else "" for label in host.split("."))
    except UnicodeError:
        return host.encode("ascii", "backslashreplace").decode("ascii")


def format_title(scheme: str, host: str, port: int | None) -> str:
    """Where the consent page came from, as its window title.

    ``news.example.com - https - Sign in to Zephr``; the port only when it is not the
    default; an international host in punycode first, its Unicode form after it in
    brackets (``xn--pple-43d.com (аpple.com) - https - ...``) so a look-alike cannot pass
    for the real name; pages without a web origin (``about:``, ``blob:``, ``data:``) say
    so. Before anything has loaded (no scheme): just ``Sign in to Zephr``.
    """
    if not scheme:
        return TITLE_SUFFIX
    if scheme not in _WEB_PORTS or not host:
        return f"{UNTRUSTED} - {TITLE_SUFFIX}"
    if ":" in host:  # IPv6
        origin = host if host.startswith("[") else f"[{host}]"
        shown = None
    else:
        origin = _ace_host(host)
        shown = _unicode_host(origin)
    if port not in (None, -1, _WEB_PORTS[scheme]):
        origin = f"{origin}:{port}"
    if shown is not None:
        origin = f"{origin} ({shown})"
    return f"{origin} - {scheme} - {TITLE_SUFFIX}"


class ConsentWindow:
    """One consent window for one sign-in."""

    def __init__(
        self,
        url: str,
        *,
        gui: GuiThread,
        on_user_close: Callable[[], None],
        storage_dir: Path | None = None,
        width: int = 560,
        height: int = 760,
    ) -> None:
        self._url = url
        self._gui = gui
        self._on_user_close = on_user_close
        self._storage_dir = storage_dir
        self._size = (width, height)
        self._window: Any = None
        self._page: Any = None
        self._closing_by_app = False
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
        """Close the window from the app (the flow ended); does not call ``on_user_close``."""
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
        from qtpy.QtWebEngineCore import QWebEnginePage, QWebEngineProfile

        native = window.native
        profile = self._make_profile(native, QWebEngineProfile)
        page = QWebEnginePage(profile, native.webview)
        deny_page_permissions(page)
        follow_only_web(page)
        page.urlChanged.connect(lambda _url: self._retitle(native))
        page.loadFinished.connect(lambda _ok: self._retitle(native))
        # The profile must outlive its page ("Release of profile requested but WebEnginePage still not deleted").
        page.destroyed.connect(profile.deleteLater)
        old = native.webview.page()
        native.webview.setPage(page)
        native.setWindowTitle(TITLE_SUFFIX)
        if old is not None and old is not page:
            old.deleteLater()
        self._page = page
        page.load(QUrl(self._url))

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

    def _retitle(self, native: Any) -> None:
        try:
            from qtpy.QtCore import QUrl

            url = self._page.url()
            host = url.host(QUrl.ComponentFormattingOption.EncodeUnicode)  # punycode, never Unicode
            title = format_title(url.scheme(), host, url.port())
            native.setWindowTitle(title)
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not update the consent window title")

    def _on_closing(self) -> None:
        if not self._closing_by_app:
            # Cancelling closes the listener; keep that off the GUI thread.
            threading.Thread(target=self._on_user_close, name="zephr-consent-closed", daemon=True).start()

    def _on_closed(self) -> None:
        self._closed.set()
