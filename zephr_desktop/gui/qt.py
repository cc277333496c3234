"""Small Qt helpers shared by the windows: the GUI-thread trampoline, the permission fix, navigation rules.

Qt is imported inside the functions: this module is imported only once the app has set
up the environment QtWebEngine needs (see ``app.prepare_environment``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class GuiThread:
    """Runs callables on the Qt main thread and waits for their result.

    pywebview calls the ``Api`` on worker threads; Qt objects (the clipboard, windows,
    pages) may only be touched on the thread that owns them. Build this on the GUI thread.
    """

    def __init__(self) -> None:
        from qtpy.QtCore import QObject, Qt, Signal

        class _Invoker(QObject):
            request = Signal(object)
            later = Signal(object)

        self._invoker = _Invoker()
        # Emitted from a worker, the slot runs in the invoker's (GUI) thread (an automatic queued connection).
        self._invoker.request.connect(self._run)
        # Always queued, even from the GUI thread: the job runs after the current slot has returned.
        # PyQt6's stub declares connect(slot) only; the binding also takes the connection type.
        self._invoker.later.connect(self._run, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        self._thread = threading.current_thread()

    @staticmethod
    def _run(job: Callable[[], None]) -> None:
        job()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the GUI thread and return its result (re-raises its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        values: list[T] = []
        errors: list[BaseException] = []

        def job() -> None:
            try:
                values.append(fn())
            except BaseException as exc:  # handed back to the caller's thread
                errors.append(exc)
            finally:
                done.set()

        self._invoker.request.emit(job)
        if not done.wait(timeout):
            raise TimeoutError(f"the GUI thread did not answer within {timeout:.0f} s")
        if errors:
            raise errors[0]
        return values[0]

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the GUI thread later (from any thread, the GUI thread too), without waiting."""
        self._invoker.later.emit(fn)


def deny_page_permissions(page: Any) -> None:
    """Answer every permission request of ``page`` (clipboard, camera, ...) with a proper deny.

    pywebview 6.2.1 connects ``featurePermissionRequested`` to a handler that passes a bare
    int to ``setFeaturePermission``; PyQt6 raises TypeError inside the slot, and an
    exception in a PyQt6 slot aborts the process (SIGABRT). Qt 6.8+ also emits
    ``permissionRequested`` with a ``QWebEnginePermission``; both are answered here. Nothing
    in these windows needs a permission: copying goes through Python.
    """
    from qtpy.QtWebEngineCore import QWebEnginePage

    with contextlib.suppress(TypeError, RuntimeError):  # raised when nothing was connected
        page.featurePermissionRequested.disconnect()
    denied = QWebEnginePage.PermissionPolicy.PermissionDeniedByUser

    def on_feature(origin: Any, feature: Any) -> None:
        try:
            page.setFeaturePermission(origin, feature, denied)
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not answer a permission request")

    page.featurePermissionRequested.connect(on_feature)
    if hasattr(page, "permissionRequested"):

        def on_permission(permission: Any) -> None:
            try:
                permission.deny()
            except Exception:
                log.exception("could not answer a permission request")

        page.permissionRequested.connect(on_permission)


def _is_web(url: Any) -> bool:
    return str(url.scheme()) in ("http", "https")


def disable_drop_navigation(page: Any) -> None:
    """A file or URL dropped on the window must not load in it (Chromium's navigate-on-drop)."""
    from qtpy.QtWebEngineCore import QWebEngineSettings

    page.settings().setAttribute(QWebEngineSettings.WebAttribute.NavigateOnDropEnabled, False)


def confine_to_app_page(page: Any, app_url: str, open_link: Callable[[str], None]) -> None:
    """Keep the main window on the app's own page: pywebview injects the bridge into whatever it loads.

    Every navigation to another URL (a link, ``location.href``, a form, a drop, a frame) is
    refused; a link to an http(s) URL that the person clicked (or a new window they opened
    on one) goes to ``open_link`` (the system browser) instead. pywebview's own page class
    answers a new window with a page that hands any URL, of any scheme, to the browser; it
    is replaced here by no page at all.
    """
    from qtpy.QtCore import QUrl
    from qtpy.QtWebEngineCore import QWebEngineNavigationRequest

    no_fragment = QUrl.UrlFormattingOption.RemoveFragment
    home = QUrl(app_url).adjusted(no_fragment)
    link = QWebEngineNavigationRequest.NavigationType.LinkClickedNavigation

    def on_navigation(request: Any) -> None:
        try:
            url = request.url()
            if url.adjusted(no_fragment) == home:
                return
            request.reject()
            if request.isMainFrame() and request.navigationType() == link and _is_web(url):
                open_link(url.toString())
            else:
                log.warning("refused to leave the app's page for a %s URL", url.scheme() or "relative")
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not check a navigation of the main window")

    def on_new_window(request: Any) -> None:
        try:
            url = request.requestedUrl()
            if request.isUserInitiated() and _is_web(url):
                open_link(url.toString())
            else:
                log.warning("refused a new window for a %s URL", url.scheme() or "relative")
        except Exception:
            log.exception("could not answer a new window request")

    page.navigationRequested.connect(on_navigation)
    page.newWindowRequested.connect(on_new_window)
    page.createWindow = lambda _type: None  # instead of pywebview's page that opens anything in the browser
    disable_drop_navigation(page)


def _engine_internal(url: Any) -> bool:
    """URLs the engine loads on its own: empty and inline frames, a page's own blobs, inline data."""
    scheme = str(url.scheme())
    return scheme in ("blob", "data") or (scheme == "about" and str(url.path()) in ("blank", "srcdoc"))


def follow_only_web(page: Any) -> None:
    """Let ``page`` go to http and https URLs only (and what the engine needs internally).

    By default QtWebEngine hands a clicked link of any other scheme (``zoommtg:``,
    ``ms-teams:``, ``mailto:``) to the desktop (``xdg-open``) without asking. Here unknown
    schemes are refused by the engine's own policy, and every navigation to something other
    than http(s) is refused as well (``file:``, ``ftp:``, schemes the engine would handle).
    """
    from qtpy.QtWebEngineCore import QWebEngineSettings

    page.settings().setUnknownUrlSchemePolicy(QWebEngineSettings.UnknownUrlSchemePolicy.DisallowUnknownUrlSchemes)

    def on_navigation(request: Any) -> None:
        try:
            url = request.url()
            if _is_web(url) or _engine_internal(url):
                return
            request.reject()
            log.warning("refused to follow a %s link in the sign-in window", url.scheme() or "relative")
        except Exception:  # an exception escaping a slot would abort the process
            log.exception("could not check a navigation of the sign-in window")

    page.navigationRequested.connect(on_navigation)
    disable_drop_navigation(page)


def _encoded(url: Any) -> str:
    """A QUrl as ASCII text, with its host in punycode (what the redirect URI is compared with)."""
    return bytes(url.toEncoded()).decode("ascii", "replace")


def catch_navigations(page: Any, matches: Callable[[str], bool], on_caught: Callable[[str], None]) -> None:
    """Refuse every navigation of ``page`` to a URL that ``matches``: links, scripts and server redirects alike.

    The engine asks before it sends the request (for a 302, before it follows the redirect),
    so a refused URL never leaves the machine. A main-frame one goes to ``on_caught``, which
    must not block (it is called inside the engine's check).
    """

    def on_navigation(request: Any) -> None:
        try:
            url = _encoded(request.url())
            if not matches(url):
                return
            request.reject()
            if request.isMainFrame():
                on_caught(url)
            else:
                log.warning("refused a frame's navigation to the redirect URI")
        except Exception:  # an exception escaping a slot would abort the process; refuse what was not checked
            log.exception("could not check a navigation for the redirect URI")
            request.reject()

    page.navigationRequested.connect(on_navigation)


def redirect_interceptor(matches: Callable[[str], bool], on_caught: Callable[[str], None], parent: Any) -> Any:
    """A request interceptor for a whole profile that blocks every request for a URL that ``matches``.

    The second net under ``catch_navigations``: it also sees requests that are not
    navigations (a script's ``fetch``, an image, a prefetch) and pages that have no navigation
    check. A blocked main-frame request goes to ``on_caught``.
    """
    from qtpy.QtWebEngineCore import QWebEngineUrlRequestInfo, QWebEngineUrlRequestInterceptor

    main_frame = QWebEngineUrlRequestInfo.ResourceType.ResourceTypeMainFrame

    class _Interceptor(QWebEngineUrlRequestInterceptor):
        def interceptRequest(self, info: Any) -> None:
            try:
                url = _encoded(info.requestUrl())
                if not matches(url):
                    return
                info.block(True)
                if info.resourceType() == main_frame:
                    on_caught(url)
                else:
                    log.warning("blocked a request for the redirect URI (resource type %s)", info.resourceType())
            except Exception:  # an exception escaping a virtual would abort the process; block what was not checked
                log.exception("could not check a request for the redirect URI")
                info.block(True)

    return _Interceptor(parent)
