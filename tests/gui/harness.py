"""Run the real app under its own Xvfb and drive it from outside, as a person would.

Each ``GuiApp`` owns two process groups: an ``Xvfb`` on a display it picks itself
(``-displayfd``) and the app (``zephr_desktop.gui.run``) in a child Python with
``start_new_session=True``. A watchdog kills both groups at the hard deadline, and
``close()`` (always reached through ``with``) kills whatever is left, so a hung GUI never
hangs the test run.

Nothing in the app is there for the tests. The harness reads the pages through the web
engine's own remote-debugging port (``QTWEBENGINE_REMOTE_DEBUGGING``, the Chrome DevTools
Protocol: ``GET /json`` lists the pages, ``Runtime.evaluate`` runs a script in one), and does
what a person does through X: real mouse clicks and key presses (``xdotool``), the
clipboard (``xclip``), window titles (``xprop``), screenshots (``import -window``) and
closing a window (a ``WM_DELETE_WINDOW`` message, as a window manager sends when the close
button is clicked). Screenshots go to the test's temp dir, never into the repository.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import websocket
from support.signin import add_profile

from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import TEST_USERS, Sandbox

REPO = Path(__file__).resolve().parents[2]
SCREEN = "1280x800x24"
JOE = "joe@example.com"
PASSWORD = TEST_USERS[JOE]["password"]

_APP_CODE = """
import sys
from zephr_desktop.gui import run
sys.exit(run(sys.argv[1] or None, demo=sys.argv[2] == "demo"))
"""

REQUIRED_TOOLS = ("Xvfb", "xclip", "xdotool", "xprop", "import")


class HarnessError(AssertionError):
    """The app or the harness did not behave in time; the message carries the app's log tail."""


def require_tools() -> None:
    """Fail (never skip) when a tool the GUI tests need is missing."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise HarnessError(
            f"GUI tests need {', '.join(missing)} on PATH"
            " (Debian: apt-get install xvfb xclip xdotool x11-utils imagemagick)."
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


class DevTools:
    """A Chrome DevTools Protocol client for the app's web engine, on 127.0.0.1:``port``.

    One websocket per page, opened on first use and kept; a page that went away (its window
    closed) is dropped. Only commands are sent (no domain is enabled), so every message that
    comes back is a reply; replies to other ids (none expected) are skipped.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._sockets: dict[str, websocket.WebSocket] = {}
        self._next_id = 0
        # The debugging port is on loopback: never through a proxy from the environment.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str, timeout: float = 5.0) -> Any:
        """GET a JSON document of the DevTools HTTP endpoint (``/json/list``, ``/json/version``)."""
        with self._http.open(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:
            return json.loads(response.read())

    def pages(self) -> list[dict[str, Any]]:
        """The engine's pages (one per window), each with ``id``, ``url`` and ``webSocketDebuggerUrl``."""
        return [t for t in self.get("/json/list") if t.get("type") == "page"]

    def call(
        self, page: dict[str, Any], method: str, params: dict[str, Any] | None = None, timeout: float = 20.0
    ) -> Any:
        """Send one command to a page and return its ``result``; raise HarnessError on a protocol error."""
        sock = self._sockets.get(page["id"])
        if sock is None:
            try:
                sock = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
            except (OSError, websocket.WebSocketException) as exc:
                # A window that swapped its page a moment ago leaves a target that is already gone: a wait retries.
                raise HarnessError(f"DevTools {method} on {page.get('url')!r}: {type(exc).__name__}: {exc}") from exc
            self._sockets[page["id"]] = sock
        self._next_id += 1
        message_id = self._next_id
        try:
            sock.settimeout(timeout)
            sock.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
            while True:
                reply = json.loads(sock.recv())
                if reply.get("id") == message_id:
                    break
        except (OSError, websocket.WebSocketException) as exc:
            self._drop(page["id"])
            raise HarnessError(f"DevTools {method} on {page.get('url')!r}: {type(exc).__name__}: {exc}") from exc
        if "error" in reply:
            raise HarnessError(f"DevTools {method} on {page.get('url')!r}: {reply['error']}")
        return reply.get("result", {})

    def evaluate(self, page: dict[str, Any], script: str, timeout: float = 20.0) -> Any:
        """Run ``script`` in the page's main world and return its completion value as JSON (None for undefined)."""
        params = {"expression": script, "returnByValue": True, "awaitPromise": True}
        result = self.call(page, "Runtime.evaluate", params, timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise HarnessError(f"the script failed in {page.get('url')!r}: {text}")
        return result.get("result", {}).get("value")

    def forget(self, keep: set[str]) -> None:
        """Close the sockets of pages not in ``keep`` (their windows are gone)."""
        for page_id in set(self._sockets) - keep:
            self._drop(page_id)

    def _drop(self, page_id: str) -> None:
        sock = self._sockets.pop(page_id, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.close()

    def close(self) -> None:
        """Close every socket."""
        self.forget(set())


class GuiApp:
    """One app process under one private X server."""

    def __init__(
        self,
        tmp: Path,
        *,
        timeout: float = 90.0,
        env: dict[str, str] | None = None,
        screenshots: Path | None = None,
    ) -> None:
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
        # The runtime dir holds the app's one-instance socket: private, and short (a socket path has ~100 bytes).
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="zephr-rt-"))
        self.screenshots = screenshots or tmp / "screenshots"
        self.app_log = tmp / "app.log"
        self.display: str | None = None
        self.xvfb: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self.devtools: DevTools | None = None
        self.main_page_id: str | None = None
        self.consent_page_id: str | None = None
        self.app_url: str | None = None
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
        if self.devtools is not None:
            self.devtools.close()
        _kill_group(self.app)
        _kill_group(self.xvfb)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

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
        """The app's environment as a person's session would have it: private X display, XDG dirs, file keyring."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZEPHR_", "XDG_", "QT_", "PYTHON_KEYRING"))}
        env.update({k: str(v) for k, v in self.xdg.items()})
        env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        env.update(
            {
                "HOME": str(self.home),
                "DISPLAY": self.display or "",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
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
        """Start the app with the engine's debugging port on loopback; wait until its page has drawn itself."""
        assert self.display, "enter the GuiApp first"
        if self.devtools is not None:
            self.devtools.close()
        port = free_port()
        log_start = self.app_log.stat().st_size if self.app_log.exists() else 0
        env = {**self.env(), "QTWEBENGINE_REMOTE_DEBUGGING": f"127.0.0.1:{port}"}
        with open(self.app_log, "ab") as log:
            self.app = subprocess.Popen(
                [sys.executable, "-c", _APP_CODE, profile or "", "demo" if demo else ""],
                env=env,
                cwd=str(self.tmp),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.devtools = self._connect_devtools(port, log_start)
        main = self.wait_for(lambda: self.devtools and self.devtools.pages()[:1], "the main window's page", timeout=30)
        self.main_page_id, self.app_url = main[0]["id"], main[0]["url"]
        self.wait_js("document.body.dataset.ready === 'true'", timeout=40, what="the main page to be ready")

    def launch_again(
        self, profile: str | None = None, *, demo: bool = False, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Start the app once more, as a person would from the menu or a shell, and wait for that process to end.

        The first process stays ``self.app``. This one runs in its own process group, killed
        (with any window it opened) if it has not ended after ``timeout`` seconds.
        """
        assert self.display, "enter the GuiApp first"
        args = [sys.executable, "-c", _APP_CODE, profile or "", "demo" if demo else ""]
        proc = subprocess.Popen(
            args,
            env=self.env(),
            cwd=str(self.tmp),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=min(timeout, self._remaining()))
        except subprocess.TimeoutExpired:
            _kill_group(proc)  # type: ignore[arg-type]
            out, err = proc.communicate()
            raise HarnessError(f"the second launch did not end within {timeout:.0f} s; stderr: {err}") from None
        finally:
            _kill_group(proc)  # type: ignore[arg-type]
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def _connect_devtools(self, port: int, log_start: int) -> DevTools:
        """Wait for the app's engine to announce its debugging server, and check that this port is it.

        The port was free a moment ago; if another process took it in between, the engine says
        nothing (or fails), and the browser id it printed would not match what the port serves.
        """
        pattern = re.compile(rf"DevTools listening on (ws://127\.0\.0\.1:{port}/devtools/browser/[\w-]+)")

        def announced() -> str | None:
            if self.app is not None and self.app.poll() is not None:
                raise HarnessError(f"the app exited with {self.app.returncode}\n{self.log_tail()}")
            with open(self.app_log, "rb") as log:
                log.seek(log_start)
                found = pattern.search(log.read().decode("utf-8", "replace"))
            return found.group(1) if found else None

        browser_url = self.wait_for(announced, f"the web engine's debugging server on port {port}", timeout=30)
        devtools = DevTools(port)
        served = devtools.get("/json/version").get("webSocketDebuggerUrl")
        if served != browser_url:
            raise HarnessError(f"port {port} is not this app's debugging server ({served!r} != {browser_url!r})")
        return devtools

    def alive(self) -> bool:
        """True when the app process runs and its main page answers."""
        return self.app is not None and self.app.poll() is None and self.js("true") is True

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

    # -- the pages, through the engine's debugging port ----------------------------------------------
    def pages(self) -> list[dict[str, Any]]:
        """Every page the app's web engine has (one per window), as the debugging port lists them."""
        if self.app is not None and self.app.poll() is not None:
            raise HarnessError(f"the app exited with {self.app.returncode}\n{self.log_tail()}")
        if self.devtools is None:
            raise HarnessError("the app is not running; launch it first")
        try:
            pages = self.devtools.pages()
        except OSError as exc:
            raise HarnessError(f"the debugging port did not answer: {exc}\n{self.log_tail()}") from exc
        self.devtools.forget({page["id"] for page in pages})
        return pages

    def page(self, target: str = "main") -> dict[str, Any]:
        """The main window's page, the consent window's, or the one popup of a sign-in page (``popup``).

        The consent page is the page that was alone beside the main one when first asked for
        (popups come later); once it is gone (its window closed), the next lone page is.
        """
        pages = self.pages()
        if target == "main":
            found = [p for p in pages if p["id"] == self.main_page_id]
            if not found:
                raise HarnessError("the main window's page is gone")
            return found[0]
        others = [p for p in pages if p["id"] != self.main_page_id]
        if self.consent_page_id not in {p["id"] for p in others}:
            # None: no consent window. Two: for a moment while the consent window replaces its first page.
            if len(others) != 1:
                raise HarnessError(f"expected one consent page, found {len(others)}: {[p['url'] for p in others]}")
            self.consent_page_id = others[0]["id"]
        if target == "consent":
            return next(p for p in others if p["id"] == self.consent_page_id)
        popups = [p for p in others if p["id"] != self.consent_page_id]
        if len(popups) != 1:
            raise HarnessError(f"expected one popup page, found {len(popups)}: {[p['url'] for p in popups]}")
        return popups[0]

    def js(self, script: str, target: str = "main") -> Any:
        """Evaluate JavaScript in the main page or the consent page; returns its JSON value."""
        assert self.devtools is not None
        return self.devtools.evaluate(self.page(target), script, timeout=min(20.0, self._remaining()))

    def cdp(self, method: str, params: dict[str, Any] | None = None, target: str = "main") -> Any:
        """Send one DevTools command to the main page or the consent page."""
        assert self.devtools is not None
        return self.devtools.call(self.page(target), method, params, timeout=min(20.0, self._remaining()))

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
        """The consent window as a person sees it: open (shown on the screen), its title and its page's URL."""
        windows = self.find_windows("Sign in to Zephr$")
        if not windows:
            return {"open": False}
        try:
            url = self.page("consent")["url"]
        except HarnessError:
            return {"open": False}
        return {"open": True, "title": self.window_name(windows[0]), "url": url}

    # -- X: screenshots, clipboard, titles, closing windows --------------------------------------------
    def _x_env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display or "", "LC_ALL": "C.UTF-8"}

    def screenshot(self, name: str, window: int | None = None) -> Path:
        """Save the screen (or one window) to <screenshots>/<name>.png (the test's temp dir unless given)."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        time.sleep(0.4)  # let Chromium paint what the last script changed before grabbing
        which = "root" if window is None else str(window)
        subprocess.run(["import", "-window", which, str(path)], env=self._x_env(), check=True, timeout=30)
        return path

    def main_window(self) -> int:
        """The main window's X id."""
        return int(self.wait_for(lambda: self.find_windows("^Zephr Desktop$")[:1], "the main window")[0])

    def consent_window(self) -> int:
        """The consent window's X id."""
        return int(self.wait_for(lambda: self.find_windows("Sign in to Zephr$")[:1], "the consent window")[0])

    def popup_window(self) -> int:
        """The X id of the one popup window a sign-in page opened."""
        return int(self.wait_for(lambda: self.find_windows("Sign-in popup$")[:1], "the sign-in popup window")[0])

    def window_of(self, target: str) -> int:
        """The X window showing the main, consent or popup page."""
        return {"main": self.main_window, "consent": self.consent_window, "popup": self.popup_window}[target]()

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
            " var r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2, window.innerHeight]; })"
            f"({expr})",
            target,
        )
        if not point:
            raise HarnessError(f"nothing to click: {testid or selector} in the {target} window")
        x, y, _, height = self.window_geometry(self.window_of(target))
        # The page fills the window below whatever the app put above it (the consent window's bar).
        above = max(0, height - int(point[2]))
        target_x, target_y = x + int(point[0]), y + above + int(point[1])
        self.click_at(target_x, target_y)

    def click_at(self, x: int, y: int) -> None:
        """Move the real mouse to a point of the screen and click there."""
        # --sync waits for the pointer to move, and waits long when it is already there.
        sync = ["--sync"] if self.pointer() != (x, y) else []
        self.xdotool("mousemove", *sync, str(x), str(y), "click", "1")

    def press_consent_bar(self) -> None:
        """Click the consent window's own bar above its page (the app's widget, not the page's)."""
        window = self.consent_window()
        x, y, width, height = self.window_geometry(window)
        page_height = int(self.js("window.innerHeight", "consent"))
        bar = height - page_height
        if bar < 10:
            raise HarnessError(f"the consent window has no bar above its page (window {height} px, page {page_height})")
        self.click_at(x + width // 2, y + bar // 2)

    def pointer(self) -> tuple[int, int]:
        """Where the mouse pointer is on the screen."""
        result = subprocess.run(
            ["xdotool", "getmouselocation", "--shell"], env=self._x_env(), capture_output=True, text=True, timeout=10
        )
        values = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
        return int(values.get("X", -1)), int(values.get("Y", -1))

    def type_into(self, selector: str, text: str, target: str = "consent") -> None:
        """Focus an empty field and type into it with the real keyboard (X key events).

        Key events reach Chromium asynchronously: wait until the field holds the whole text
        before anything else moves the focus, and type again if keys were lost on the way.
        """
        field = f"document.querySelector({json.dumps(selector)})"
        window = self.window_of(target)
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
        """A window's title as a window manager shows it (``_NET_WM_NAME``, UTF-8)."""
        result = subprocess.run(
            ["xprop", "-id", str(window), "-notype", "_NET_WM_NAME"],
            env=self._x_env(),
            capture_output=True,
            timeout=10,
        )
        # xprop prints: _NET_WM_NAME = "title" (quotes and backslashes escaped with a backslash).
        found = re.search(rb'= "(.*)"$', result.stdout.strip(), re.S)
        if not found:
            return ""
        return re.sub(rb"\\(.)", rb"\1", found.group(1)).decode("utf-8", "replace")

    def close_window(self, window: int) -> None:
        """Ask a window to close, as a window manager does when its close button is clicked."""
        send_wm_delete(self.display or "", window)


# -- what a person does in the app, shared by the GUI tests and scripts/screenshots.py --------------------
def seed_profile(gui: GuiApp, sb: Sandbox, name: str = "sandbox", *, keep_site_session: bool = False) -> Profile:
    """Write a profile pointing at the sandbox into the app's config, and its secret into its store."""
    return add_profile(
        sb,
        name,
        config_path=gui.config_path,
        data_dir=gui.data_dir,
        scopes=["user.account:read", "user.profile:read"],
        keep_site_session=keep_site_session,
    )


def wait_token(gui: GuiApp, *, other_than: str | None = None, timeout: float = 20.0) -> str:
    """Wait until the token panel shows a token (different from ``other_than``)."""
    sel = gui.sel("access-token")
    script = f"(function(e){{ return e && e.offsetParent !== null ? e.textContent : ''; }})({sel})"

    def check() -> str:
        value = str(gui.js(script) or "")
        return value if value and value != other_than else ""

    return str(gui.wait_for(check, "a new token in the token panel", timeout))


def consent_sign_in(gui: GuiApp, *, allow: bool = True) -> None:
    """In the consent window: type the test user's credentials, sign in, click Allow (or Deny)."""
    gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")
    gui.type_into("#email", JOE)
    gui.type_into("#password", PASSWORD)
    gui.press(selector="#sign-in", target="consent")
    button = "#allow" if allow else "#deny"
    gui.wait_js(f"document.readyState === 'complete' && !!document.querySelector('{button}')", target="consent")
    gui.press(selector=button, target="consent")


def sign_in(gui: GuiApp, sb: Sandbox) -> str:
    """Sign in through the app's own windows; returns the token the panel shows."""
    issued = len(sb.issued)
    gui.press("sign-in")
    consent_sign_in(gui)
    token = wait_token(gui)
    assert len(sb.issued) == issued + 1
    return token


def consent_gone(gui: GuiApp) -> bool:
    """True when no consent window is shown and no consent page is left in the engine."""
    return not gui.consent().get("open") and not gui.find_windows("Sign in to Zephr$")


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
