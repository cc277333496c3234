"""The desktop app's start: one app per user (``handoff``), the Qt fixes, the main window's run.

``run`` checks for a display, becomes the running app (or hands over to it), then opens the
main window (``shell``) on a session, or on the demo's own files and sandbox (``demo``).
Qt workarounds applied here (each verified under Xvfb with PyQt6 6.11 / pywebview 6.2.1):
- Running as root, QtWebEngine refuses to start without ``QTWEBENGINE_DISABLE_SANDBOX=1``;
  it is set before Qt loads, for root only.
- An exception escaping any PyQt6 slot aborts the process unless ``sys.excepthook`` is
  replaced; the hook installed here logs the error type instead.
- The Qt backend is forced on Linux (``webview.start(gui="qt")``).
The ones for the main window's page are applied in ``shell.DesktopShell.attach``.
Missing X libraries show up as a misleading "xcb-cursor0 is needed"; ``QT_DEBUG_PLUGINS=1``
names the library that is really missing.
"""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType
from typing import Any

from ..errors import ZephrError
from ..instance import Server
from ..store import TokenStore, take_env_client_secret
from .demo import DemoSession, quiet_notice, start_demo
from .handoff import claim_instance, instance_handler
from .session import Session
from .shell import DesktopShell, create_main_window

log = logging.getLogger(__name__)


def prepare_environment() -> None:
    """Set what QtWebEngine needs before Qt is imported."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium's sandbox cannot run as root; QtWebEngine exits instead unless told to skip it.
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def _log_unhandled(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    # PyQt6 calls qFatal (SIGABRT) for an exception escaping a slot unless a hook is set.
    log.error("unhandled %s in the GUI: %s", kind.__name__, exc if isinstance(exc, ZephrError) else "")


def missing_display() -> str | None:
    """A sentence saying why no window can open here, or None."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "No graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set). Run the app in a desktop "
        "session, or use the command line: `zephr-desktop login --browser` or `--no-browser`."
    )


def run(profile_name: str | None = None, *, demo: bool = False, client_secret: str | None = None) -> int:
    """Open the main window and run until it is closed; returns the exit code.

    One app per user and config dir: launched again, it brings the running window to the front
    (showing ``profile_name`` if given) and exits 0. A demo is always its own app: it has its own
    config dir, never asks the running app, and is never asked.
    """
    # Out of the environment before the web engine's processes (or a browser) can inherit it.
    client_secret = take_env_client_secret() or client_secret
    problem = missing_display()
    if problem:
        # Without this, Qt aborts the process with a platform-plugin message that misleads.
        print(f"zephr-desktop: {problem}", file=sys.stderr)
        return 1
    server: Server | None = None
    if not demo:
        server, code = claim_instance(profile_name)
        if code is not None:
            return code
    try:
        return _run_window(profile_name, demo=demo, server=server, client_secret=client_secret)
    finally:
        if server is not None:
            server.close()


def _run_window(profile_name: str | None, *, demo: bool, server: Server | None, client_secret: str | None) -> int:
    prepare_environment()
    import webview

    sys.excepthook = _log_unhandled
    demo_session: DemoSession | None = None
    store = TokenStore(client_secret_override=client_secret)
    sandbox: Any = None
    demo_hint: str | None = None
    shell = DesktopShell()
    session: Session | None = None
    try:
        if demo:
            demo_session = DemoSession.open()  # before the store, or anything else, reads a path
            store = TokenStore(notice=quiet_notice)
            sandbox, profile_name, demo_hint = start_demo(store)
        session = Session(shell, store=store, profile_name=profile_name, demo_hint=demo_hint)
        create_main_window(session, shell)
        if server is not None:
            server.serve(instance_handler(session, shell))
        session.start_watching()
        # No icon= here: pywebview would give each window that one file, hiding the app icon's sizes.
        webview.start(gui="qt" if sys.platform.startswith("linux") else None, private_mode=True)
    except ZephrError as exc:
        print(f"zephr-desktop: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if session is not None:
            session.shutdown()
        shell.close()
        if sandbox is not None:
            sandbox.stop()
        if demo_session is not None:
            demo_session.close()
    return 0
