"""The desktop app: the main window over the ``Api`` bridge, the Qt fixes, the clipboard.

Qt workarounds applied here (each verified under Xvfb with PyQt6 6.11 / pywebview 6.2.1):
- Running as root, QtWebEngine refuses to start without ``QTWEBENGINE_DISABLE_SANDBOX=1``;
  it is set before Qt loads, for root only.
- pywebview's Qt permission handler aborts the process under PyQt6 on any page permission
  request (e.g. ``navigator.clipboard``); it is replaced in the window's ``before_show``
  (see ``qt.deny_page_permissions``).
- An exception escaping any PyQt6 slot aborts the process unless ``sys.excepthook`` is
  replaced; the hook installed here logs the error type instead.
- The Qt backend is forced on Linux (``webview.start(gui="qt")``).
Missing X libraries show up as a misleading "xcb-cursor0 is needed"; ``QT_DEBUG_PLUGINS=1``
names the library that is really missing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import SCOPES, Profile, is_loopback_host, load_profiles, remove_profile, save_profile
from ..errors import ZephrError
from ..resources import assets_dir
from ..store import TokenStore, take_env_client_secret
from .api import Api
from .consent import ConsentWindow
from .qt import GuiThread, deny_page_permissions

log = logging.getLogger(__name__)

APP_TITLE = "Zephr Desktop"
WINDOW_SIZE = (920, 760)
MIN_SIZE = (640, 560)
CLIPBOARD_CLEAR_AFTER = 120.0  # seconds; cleared only if the clipboard still holds what we put there
DEMO_PROFILE = "demo"


def prepare_environment() -> None:
    """Set what QtWebEngine needs before Qt is imported."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium's sandbox cannot run as root; QtWebEngine exits instead unless told to skip it.
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def _log_unhandled(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    # PyQt6 calls qFatal (SIGABRT) for an exception escaping a slot unless a hook is set.
    log.error("unhandled %s in the GUI: %s", kind.__name__, exc if isinstance(exc, ZephrError) else "")


def site_session_dir(profile: Profile) -> Path:
    """Where a profile that keeps its site session stores the consent window's cookies."""
    return TokenStore().site_session_dir(profile.name)


class DesktopShell:
    """The window side of the app as the ``Api`` sees it (see ``api.Shell``)."""

    def __init__(self, clear_after: float | None = CLIPBOARD_CLEAR_AFTER) -> None:
        self.window: Any = None
        self.gui: GuiThread | None = None
        self.consent: ConsentWindow | None = None
        self.clear_after = clear_after
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pusher = threading.Thread(target=self._push_loop, name="zephr-push", daemon=True)
        self._pusher.start()

    def attach(self, window: Any) -> None:
        """Called on the GUI thread in the main window's ``before_show``."""
        self.window = window
        self.gui = GuiThread()
        deny_page_permissions(window.native.webview.page())
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.setApplicationName("zephr-desktop")
            app.setDesktopFileName("zephr-desktop")

    def close(self) -> None:
        """Stop the event pusher."""
        self._events.put(None)

    # -- api.Shell -----------------------------------------------------------------------
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
                window.evaluate_js(f"window.zephrPush && window.zephrPush({json.dumps(event)})")
            except Exception as exc:  # the window may be closing
                log.debug("could not push %s: %s", event.get("type"), type(exc).__name__)

    def open_consent(self, url: str, profile: Profile, on_user_close: Any) -> ConsentWindow:
        """Open the sign-in window on ``url``."""
        assert self.gui is not None
        storage = site_session_dir(profile) if profile.keep_site_session else None
        consent = ConsentWindow(url, gui=self.gui, on_user_close=on_user_close, storage_dir=storage)
        self.consent = consent
        consent.open()
        return consent

    def copy_text(self, text: str) -> float | None:
        """Set the system clipboard on the GUI thread; clear it later if it still holds ``text``."""
        assert self.gui is not None
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
        import webbrowser  # only for 'Open in browser instead'

        webbrowser.open(url)


def _start_demo(store: TokenStore) -> tuple[Any, str, str]:
    """Start the sandbox on loopback and save a profile pointing at it."""
    from ..sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TEST_USERS, Sandbox, SandboxSettings

    sandbox = Sandbox(host="127.0.0.1", port=0, settings=SandboxSettings(loopback_any_port=True)).start()
    name = DEMO_PROFILE
    existing = load_profiles().profiles.get(name)
    if existing is not None and not is_loopback_host(_host(existing.site_url)):
        name = "zephr-sandbox-demo"  # never overwrite a real profile that happens to be called "demo"
    profile = Profile.create(
        name=name,
        site_url=sandbox.url,
        token_url=sandbox.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri="http://127.0.0.1:0/callback",
        scopes=list(SCOPES),
    )
    save_profile(profile, make_default=False)
    store.delete(name)  # tokens of an earlier demo run belong to a sandbox that is gone
    store.set_client_secret(name, DEFAULT_CLIENT_SECRET)
    email = next(iter(TEST_USERS))
    hint = f"Demo: a local Zephr sandbox. Sign in as {email} with password {TEST_USERS[email]['password']}."
    return sandbox, name, hint


def _stop_demo(sandbox: Any, name: str, store: TokenStore) -> None:
    sandbox.stop()
    with contextlib.suppress(ZephrError):
        remove_profile(name)
    with contextlib.suppress(ZephrError):
        store.delete(name)
        store.delete_client_secret(name)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


def _control_handlers(window: Any, shell: DesktopShell) -> dict[str, Any]:
    def evaluate(request: dict[str, Any]) -> Any:
        script = str(request["js"])
        if request.get("target") == "consent":
            consent = shell.consent
            if consent is None or not consent.is_open:
                raise RuntimeError("no consent window is open")
            return consent.run_js(script)
        return window.evaluate_js(script)

    def consent_info(_request: dict[str, Any]) -> Any:
        consent = shell.consent
        return consent.info() if consent is not None else {"open": False}

    def ping(_request: dict[str, Any]) -> Any:
        return {"loaded": window.events.loaded.is_set(), "pid": os.getpid()}

    return {"eval": evaluate, "consent": consent_info, "ping": ping}


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
    """Open the main window and run until it is closed; returns the exit code."""
    # Out of the environment before the web engine's processes (or a browser) can inherit it.
    client_secret = take_env_client_secret() or client_secret
    problem = missing_display()
    if problem:
        # Without this, Qt aborts the process with a platform-plugin message that misleads.
        print(f"zephr-desktop: {problem}", file=sys.stderr)
        return 1
    prepare_environment()
    import webview

    sys.excepthook = _log_unhandled
    store = TokenStore(client_secret_override=client_secret)
    sandbox: Any = None
    demo_hint: str | None = None
    shell = DesktopShell()
    control: Any = None
    api: Api | None = None
    try:
        if demo:
            sandbox, profile_name, demo_hint = _start_demo(store)
        api = Api(shell, store=store, profile_name=profile_name, demo_hint=demo_hint)
        window = webview.create_window(
            APP_TITLE,
            url=str(assets_dir() / "index.html"),
            js_api=api,
            width=WINDOW_SIZE[0],
            height=WINDOW_SIZE[1],
            min_size=MIN_SIZE,
            background_color="#f4f5f7",
            text_select=True,  # pywebview's default blocks selecting text (user id, test results)
        )
        if window is None:
            raise RuntimeError("pywebview could not create the main window")
        window.events.before_show += shell.attach
        window.events.closed += api.shutdown
        control_path = os.environ.get("ZEPHR_DESKTOP_TEST_CONTROL")
        if control_path:
            from .control import ControlServer  # the automation channel, off unless asked for

            control = ControlServer(control_path, _control_handlers(window, shell))
            control.start()
        api.start_background()
        icon = assets_dir() / "icon.png"
        webview.start(
            gui="qt" if sys.platform.startswith("linux") else None,
            private_mode=True,
            icon=str(icon) if icon.is_file() else None,
        )
    except ZephrError as exc:
        print(f"zephr-desktop: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if api is not None:
            api.shutdown()
        shell.close()
        if control is not None:
            control.stop()
        if sandbox is not None and profile_name:
            _stop_demo(sandbox, profile_name, store)
    return 0
