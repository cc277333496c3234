"""The popups a consent window's pages open (``window.open``, ``target=_blank``: social sign-in).

Each popup is a child window of the consent window, with a page the consent window makes in
the sign-in's own profile and under the same rules, titled with its own origin (``Sign-in
popup``). Only http(s) popups and empty ones their opener sends on (``about:blank``) open, at
most ``MAX_POPUPS`` at once (a page that opens windows in a loop gets no more), and none once
the consent window is closing; they all close with it. Everything here runs on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .origin import POPUP_SUFFIX

log = logging.getLogger(__name__)

MAX_POPUPS = 4  # open at once: a page that opens windows in a loop gets no more
POPUP_SIZE = (480, 640)


class Popups:
    """The popup windows of one consent window's pages."""

    def __init__(
        self,
        parent: Callable[[], Any],
        new_page: Callable[[Any], Any],
        retitle: Callable[[Any, Any, str], None],
    ) -> None:
        # The consent window's native window, or None while no popup may open (it is closing).
        self._parent = parent
        self._new_page = new_page  # a page in the sign-in's profile, under the consent window's rules
        self._retitle = retitle
        self._views: list[Any] = []

    def on_new_window(self, request: Any) -> None:
        """A page's ``newWindowRequested``: open the popup in a child window, or refuse it."""
        try:
            url = request.requestedUrl()
            # about:blank: a popup opened empty and sent on by its opener (its next URL is checked then).
            if str(url.scheme()) not in ("http", "https") and url.toString() != "about:blank":
                log.warning("refused a popup for a %s URL", url.scheme() or "relative")
                return
            page = self._open()
            if page is not None:
                request.openIn(page)
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not open a popup of the sign-in page")

    def _open(self) -> Any:
        """A child window for a popup of a sign-in page (GUI thread); its page, or None to refuse it."""
        parent = self._parent()
        if parent is None or len(self._views) >= MAX_POPUPS:
            log.warning("refused a popup of the sign-in page (%d open)", len(self._views))
            return None
        from qtpy.QtCore import Qt
        from qtpy.QtWebEngineWidgets import QWebEngineView

        view = QWebEngineView(parent)
        # A window of its own, owned by the consent window; deleted once closed.
        view.setWindowFlags(Qt.WindowType.Window)
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.setWindowTitle(POPUP_SUFFIX)
        view.resize(*POPUP_SIZE)
        page = self._new_page(view)
        view.setPage(page)
        page.urlChanged.connect(lambda _url: self._retitle(view, page, POPUP_SUFFIX))
        page.loadFinished.connect(lambda _ok: self._retitle(view, page, POPUP_SUFFIX))
        page.windowCloseRequested.connect(view.close)  # the popup's own window.close()
        view.destroyed.connect(lambda *_: self._forget(view))
        self._views.append(view)
        view.show()
        return page

    def _forget(self, view: Any) -> None:
        self._views = [popup for popup in self._views if popup is not view]

    def close_all(self) -> None:
        """Close every popup (the consent window is closing)."""
        for view in list(self._views):
            try:
                view.close()
            except RuntimeError:  # already deleted
                self._forget(view)
