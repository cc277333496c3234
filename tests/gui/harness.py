"""Run the real app under its own Xvfb and drive it as a person would.

Each ``GuiApp`` owns two process groups: an ``Xvfb`` on a display it picks itself
(``-displayfd``) and the app (``zephr_desktop.gui.run``) in a child Python with
``start_new_session=True``. A watchdog kills both groups at the hard deadline, and
``close()`` (always reached through ``with``) kills whatever is left, so a hung GUI never
hangs the test run.

The test talks to the app over the test-only control channel (``ZEPHR_DESKTOP_TEST_CONTROL``,
a Unix socket in the test's temp dir): it evaluates JavaScript in the main window or the
consent window. Everything a person sees or touches outside the pages goes through X:
screenshots (``import -window root``), the clipboard (``xclip``), window titles
(``xdotool``) and closing a window (a ``WM_DELETE_WINDOW`` message, as a window manager
sends when the close button is clicked).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
SCREEN = "1280x800x24"

_APP_CODE = """
import sys
from zephr_desktop.gui import run
sys.exit(run(sys.argv[1] or None, demo=sys.argv[2] == "demo"))
"""

REQUIRED_TOOLS = ("Xvfb", "xclip", "xdotool", "import")


class HarnessError(AssertionError):
    """The app or the harness did not behave in time; the message carries the app's log tail."""


def require_tools() -> None:
    """Fail (never skip) when a tool the GUI tests need is missing."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise HarnessError(
            f"GUI tests need {', '.join(missing)} on PATH (Debian: apt-get install xvfb xclip xdotool imagemagick)."
        )


def _kill_group(proc: subprocess.Popen[bytes] | None, grace: float = 3.0) -> None:
    if proc is None or proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


class GuiApp:
    """One app process under one private X server."""

    def __init__(self, tmp: Path, *, timeout: float = 90.0, env: dict[str, str] | None = None) -> None:
        require_tools()
        self.tmp = tmp
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.extra_env = dict(env or {})
        self.home = tmp / "home"
        names = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
        self.xdg = {name: tmp / name.lower() for name in names}
        for path in (self.home, *self.xdg.values()):
            path.mkdir(parents=True, exist_ok=True)
        self.control_path = str(tmp / "control.sock")
        self.app_log = tmp / "app.log"
        self.display: str | None = None
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self._watchdog = threading.Timer(timeout, self._on_timeout)
        self._watchdog.daemon = True
        self.timed_out = False

    # -- paths the app uses -------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """profiles.toml as the app's platformdirs sees it."""
        return self.xdg["XDG_CONFIG_HOME"] / "zephr-desktop" / "profiles.toml"

    @property
    def data_dir(self) -> Path:
        """The app's platformdirs data dir (tokens, the 0600 secret file)."""
        return self.xdg["XDG_DATA_HOME"] / "zephr-desktop"

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> GuiApp:
        self._watchdog.start()
        try:
            self._start_xvfb()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_timeout(self) -> None:
        self.timed_out = True
        _kill_group(self.app, grace=0.5)
        _kill_group(self.xvfb, grace=0.5)

    def close(self) -> None:
        """Kill both process groups (app first) and stop the watchdog."""
        self._watchdog.cancel()
        _kill_group(self.app)
        _kill_group(self.xvfb)

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.timed_out:
            raise HarnessError(f"hard timeout of {self.timeout:.0f} s reached\n{self.log_tail()}")
        return left

    def _start_xvfb(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            with open(self.tmp / "xvfb.log", "wb") as log:
                self.xvfb = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", SCREEN, "-nolisten", "tcp", "-noreset"],
                    pass_fds=(write_fd,),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
            os.close(write_fd)
            write_fd = -1
            data = b""
            while not data.endswith(b"\n"):
                ready, _, _ = select.select([read_fd], [], [], min(10.0, self._remaining()))
                if not ready:
                    raise HarnessError("Xvfb did not report its display within 10 s")
                chunk = os.read(read_fd, 64)
                if not chunk:
                    raise HarnessError(f"Xvfb exited: {(self.tmp / 'xvfb.log').read_text(errors='replace')[-2000:]}")
                data += chunk
            self.display = f":{int(data.strip())}"
        finally:
            if write_fd >= 0:
                os.close(write_fd)
            os.close(read_fd)

    def env(self) -> dict[str, str]:
        """The app's environment: private X display, XDG dirs, file keyring, control socket."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEPHR_", "XDG_", "QT_", "PYTHON_KEYRING"))}
        env.update({k: str(v) for k, v in self.xdg.items()})
        env.update(
            {
                "HOME": str(self.home),
                "DISPLAY": self.display or "",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "ZEPHR_DESKTOP_TEST_CONTROL": self.control_path,
                "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
                "PYTHONUNBUFFERED": "1",
                "QT_QPA_PLATFORM": "xcb",
                "LANG": "C.UTF-8",
                "TZ": "UTC",
            }
        )
        env.pop("WAYLAND_DISPLAY", None)
        env.update(self.extra_env)
        return env

    def launch(self, profile: str | None = None, *, demo: bool = False) -> None:
        """Start the app and wait until its page has drawn itself."""
        assert self.display, "enter the GuiApp first"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.control_path)
        with open(self.app_log, "ab") as log:
            self.app = subprocess.Popen(
                [sys.executable, "-c", _APP_CODE, profile or "", "demo" if demo else ""],
                env=self.env(),
                cwd=str(self.tmp),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(lambda: os.path.exists(self.control_path), "the control socket", timeout=30)
        self.wait_js("document.body.dataset.ready === 'true'", timeout=40, what="the main page to be ready")

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the app to exit by itself; returns its exit code."""
        assert self.app is not None
        try:
            return self.app.wait(min(timeout, self._remaining()))
        except subprocess.TimeoutExpired:
            raise HarnessError(f"the app did not exit within {timeout:.0f} s\n{self.log_tail()}") from None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the app's stdout/stderr."""
        try:
            return "--- app log ---\n" + self.app_log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no app log)"

    # -- the control channel ----------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> Any:
        """Send one request to the app; returns its result or raises HarnessError."""
        if self.app is not None and self.app.poll() is not None:
            raise HarnessError(f"the app exited with {self.app.returncode}\n{self.log_tail()}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(min(30.0, self._remaining()))
            try:
                sock.connect(self.control_path)
                sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError as exc:
                raise HarnessError(f"control channel {op}: {exc}\n{self.log_tail()}") from exc
        if not data:
            raise HarnessError(f"control channel {op}: no answer\n{self.log_tail()}")
        reply = json.loads(data)
        if not reply.get("ok"):
            raise HarnessError(f"{op} failed in the app: {reply.get('error')}")
        return reply.get("result")

    def js(self, script: str, target: str = "main") -> Any:
        """Evaluate JavaScript in the main page or the consent page."""
        return self.request("eval", js=script, target=target)

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float = 20.0, interval: float = 0.1) -> Any:
        """Poll ``check`` until it returns something truthy."""
        end = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self._remaining()
            try:
                value = check()
                if value:
                    return value
            except HarnessError as exc:
                if self.app is not None and self.app.poll() is not None:
                    raise
                last_error = exc
            if time.monotonic() > end:
                detail = f" (last error: {last_error})" if last_error else ""
                raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}{detail}\n{self.log_tail()}")
            time.sleep(interval)

    def wait_js(self, script: str, *, target: str = "main", timeout: float = 20.0, what: str | None = None) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        return self.wait_for(lambda: self.js(script, target), what or script, timeout)

    # -- the page, by data-testid ---------------------------------------------------------------------
    @staticmethod
    def sel(testid: str) -> str:
        """A querySelector expression for a data-testid."""
        return f"document.querySelector('[data-testid=\"{testid}\"]')"

    def click(self, testid: str) -> None:
        """Click a control of the main page."""
        self.js(f"{self.sel(testid)}.click(); true")

    def text(self, testid: str) -> str:
        """The text content of a main page element."""
        return str(self.js(f"{self.sel(testid)}.textContent"))

    def shown_text(self, expr: str) -> str:
        """The text of the element ``expr`` if it is shown (not ``hidden``), else ''."""
        return str(self.js(f"(function(e){{ return e && !e.hidden ? e.textContent : ''; }})({expr})") or "")

    def visible(self, testid: str) -> bool:
        """True when the element is rendered (it and its ancestors are not hidden)."""
        return bool(self.js(f"(function(e){{return !!(e && e.offsetParent !== null)}})({self.sel(testid)})"))

    def consent(self) -> dict[str, Any]:
        """The consent window as the app sees it: open, title, url."""
        return dict(self.request("consent"))

    # -- X: screenshots, clipboard, titles, closing windows --------------------------------------------
    def _x_env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display or ""}

    def screenshot(self, name: str, window: int | None = None) -> Path:
        """Save the screen (or one window) to tests/gui/artifacts/<name>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        time.sleep(0.4)  # let Chromium paint what the last script changed before grabbing
        which = "root" if window is None else str(window)
        subprocess.run(["import", "-window", which, str(path)], env=self._x_env(), check=True, timeout=30)
        return path

    def publish(self, artifact: Path, name: str) -> Path:
        """Copy an artifact to docs/screenshots/<name>.png (for the README)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        shutil.copyfile(artifact, target)
        return target

    def main_window(self) -> int:
        """The main window's X id."""
        return int(self.wait_for(lambda: self.find_windows("^Zephr Desktop$")[:1], "the main window")[0])

    def consent_window(self) -> int:
        """The consent window's X id."""
        return int(self.wait_for(lambda: self.find_windows("Sign in to Zephr$")[:1], "the consent window")[0])

    def window_geometry(self, window: int) -> tuple[int, int, int, int]:
        """x, y, width, height of a window on the screen."""
        result = subprocess.run(
            ["xdotool", "getwindowgeometry", "--shell", str(window)],
            env=self._x_env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
        values = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
        return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])

    def press(self, testid: str | None = None, *, selector: str | None = None, target: str = "main") -> None:
        """Click an element with the real mouse (X events), as a person would."""
        expr = self.sel(testid) if testid else f"document.querySelector({json.dumps(selector)})"
        point = self.js(
            "(function(e){ if (!e) return null; e.scrollIntoView({block: 'center'});"
            " var r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })"
            f"({expr})",
            target,
        )
        if not point:
            raise HarnessError(f"nothing to click: {testid or selector} in the {target} window")
        window = self.main_window() if target == "main" else self.consent_window()
        x, y, _, _ = self.window_geometry(window)
        self.xdotool("mousemove", "--sync", str(x + int(point[0])), str(y + int(point[1])), "click", "1")

    def type_into(self, selector: str, text: str, target: str = "consent") -> None:
        """Focus an empty field and type into it with the real keyboard (X key events).

        Key events reach Chromium asynchronously: wait until the field holds the whole text
        before anything else moves the focus, and type again if keys were lost on the way.
        """
        field = f"document.querySelector({json.dumps(selector)})"
        window = self.main_window() if target == "main" else self.consent_window()
        for _attempt in range(3):
            self.xdotool("windowfocus", "--sync", str(window))
            self.js(f"{field}.value = ''; {field}.focus(); true", target)
            self.xdotool("type", "--delay", "8", text)
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                if self.js(f"{field}.value", target) == text:
                    return
                time.sleep(0.05)
        raise HarnessError(f"could not type into {selector}: it holds {self.js(f'{field}.value', target)!r}")

    def xdotool(self, *args: str) -> None:
        """Run one xdotool command on the app's display."""
        subprocess.run(["xdotool", *args], env=self._x_env(), check=True, capture_output=True, timeout=20)

    def clipboard(self) -> str:
        """What the X clipboard holds (CLIPBOARD selection)."""
        result = subprocess.run(
            ["xclip", "-o", "-selection", "clipboard"], env=self._x_env(), capture_output=True, timeout=10
        )
        return result.stdout.decode("utf-8", "replace")

    def find_windows(self, name_pattern: str) -> list[int]:
        """Visible top-level windows whose title matches the regular expression."""
        result = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", name_pattern],
            env=self._x_env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
        return [int(w) for w in result.stdout.split()]

    def window_name(self, window: int) -> str:
        """A window's title as X has it."""
        result = subprocess.run(
            ["xdotool", "getwindowname", str(window)], env=self._x_env(), capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def close_window(self, window: int) -> None:
        """Ask a window to close, as a window manager does when its close button is clicked."""
        send_wm_delete(self.display or "", window)


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def send_wm_delete(display: str, window: int) -> None:
    """Send WM_PROTOCOLS/WM_DELETE_WINDOW to ``window`` (what a close button does)."""
    name = ctypes.util.find_library("X11")
    if not name:
        raise HarnessError("libX11 is needed to close windows (Debian: libx11-6)")
    xlib = ctypes.cdll.LoadLibrary(name)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = xlib.XOpenDisplay(display.encode())
    if not dpy:
        raise HarnessError(f"cannot open X display {display}")
    try:
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = xlib.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = xlib.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        xlib.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
        xlib.XFlush(dpy)
    finally:
        xlib.XCloseDisplay(dpy)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when 127.0.0.1:port can be bound (nothing listens there)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
