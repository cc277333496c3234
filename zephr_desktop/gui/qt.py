"""Small Qt helpers shared by the windows: the GUI-thread trampoline and the permission fix.

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
        from qtpy.QtCore import QObject, Signal

        class _Invoker(QObject):
            request = Signal(object)

        self._invoker = _Invoker()
        # A queued connection: emitted from a worker, the slot runs in the invoker's (GUI) thread.
        self._invoker.request.connect(self._run)
        self._thread = threading.current_thread()

    @staticmethod
    def _run(job: Callable[[], None]) -> None:
        job()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the GUI thread and return its result (re-raises its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed back to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        self._invoker.request.emit(job)
        if not done.wait(timeout):
            raise TimeoutError(f"the GUI thread did not answer within {timeout:.0f} s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the GUI thread later, without waiting."""
        self._invoker.request.emit(fn)


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
