"""The desktop app's start: one app per user, the Qt fixes, the main window's run.

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
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ..errors import ZephrError
from ..instance import InstanceError, Rendezvous, Server
from ..store import TokenStore, take_env_client_secret
from .demo import DemoSession, quiet_notice, start_demo
from .session import Session
from .shell import DesktopShell, create_main_window

log = logging.getLogger(__name__)

ACTIVATE_WAIT = 15.0  # seconds another launch's request waits for this app's window to exist


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


def instance_handler(session: Session, shell: DesktopShell) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What the running app does when another launch (``activate``) or the CLI (``status``) asks."""

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "status":
            uri = session.listening_on()
            return {"ok": True, "listening": urlsplit(uri).netloc if uri else None}
        if not shell.ready.wait(ACTIVATE_WAIT):
            return {"ok": False, "error": "the window is still starting; try again in a moment"}
        error: str | None = None
        if request["profile"]:
            try:
                session.select(request["profile"])
                shell.push({"type": "profile_selected"})
            except ZephrError as exc:
                error = exc.message
        shell.bring_to_front()
        return {"ok": error is None, "error": error}

    return handle


def claim_instance(profile_name: str | None) -> tuple[Server | None, int | None]:
    """Become the running app, or hand over to the one that runs.

    Returns (the server to answer other launches with, None) to go on opening the window,
    (None, None) to go on without one (no usable rendezvous: said on stderr), or
    (None, exit code) when the running app took over (or could not be reached).
    """
    from ..paths import config_dir

    rendezvous: Rendezvous | None = None
    try:
        rendezvous = Rendezvous.for_config(config_dir())
        reply = _hand_over(rendezvous, profile_name)
    except InstanceError as exc:
        if rendezvous is None or not rendezvous.running():
            print(f"zephr-desktop: cannot tell whether the app already runs ({exc}); opening a new window.",
                  file=sys.stderr)  # fmt: skip
            return None, None
        print(
            f"zephr-desktop: the app is already running but did not answer ({exc}). "
            "Close its window (or end its process) and start it again.",
            file=sys.stderr,
        )
        return None, 1
    if isinstance(reply, Server):
        return reply, None
    if not reply["ok"]:
        print(f"zephr-desktop: the app is already running; brought its window to the front, but: {reply['error']}",
              file=sys.stderr)  # fmt: skip
        return None, 1
    shown = f", showing profile '{profile_name}'" if profile_name else ""
    print(f"zephr-desktop: the app is already running; brought its window to the front{shown}.", file=sys.stderr)
    return None, 0


def _hand_over(rendezvous: Rendezvous, profile_name: str | None) -> Server | dict[str, Any]:
    """Claim the rendezvous (a Server), or ask the app that holds it to come to the front (its reply)."""
    for _attempt in range(3):
        server = rendezvous.claim()
        if server is not None:
            return server
        try:
            return rendezvous.ask({"op": "activate", "profile": profile_name})
        except InstanceError:
            if rendezvous.running():
                raise
            # It quit between our look and our call: try to be the running app again.
    raise InstanceError("the running app keeps starting and stopping")


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
