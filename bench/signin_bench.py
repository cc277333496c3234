"""Figure 6: from the Sign in click to the sign-in page painted in the consent window.

The app runs under the GUI tests' harness, signed in or not; each round clicks Sign in on the
main page (the click's time on that page's clock) and waits for the sandbox's sign-in page in
the consent window; the end is that page's first contentful paint (Paint Timing:
``performance.timeOrigin`` plus the ``first-contentful-paint`` entry, on its own clock). The
sign-in is then cancelled and the window gone before the next round.

The peer is the same wait without the app: a running minimal pywebview window (Qt backend,
private mode) whose page asks Python, over pywebview's bridge, to open a second bare window on
the same kind of URL (the sandbox's authorize URL for the same profile, a fresh state and PKCE
challenge each round), which shows the same sign-in page. Both run at the same time under the
same X server and are measured alternately, through the web engine's DevTools port.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from zephr_desktop.errors import LoginCancelledError
from zephr_desktop.login import LoginFlow
from zephr_desktop.sandbox import DEFAULT_CLIENT_SECRET, Sandbox

from .env import REPO
from .fixtures import store_for
from .gui_child import PEER_PAGE
from .procs import CLOCK_SLACK, kill_group
from .stats import BenchError, Figure, interleave, samples

SIGNIN_TARGET = 1.20
PEER_LABEL = "a second bare pywebview window opened on the same URL"
LABEL = "Sign in click to the sign-in page painted (consent window)"

# The sign-in page's first contentful paint on the epoch clock, once it is the sandbox's login page.
_PAINTED = """(function () {
  if (location.pathname.indexOf('/zephr/login') < 0) return null;
  var p = performance.getEntriesByName('first-contentful-paint')[0];
  return p ? performance.timeOrigin + p.startTime : null;
})()"""

_CLICK_SIGN_IN = """(function () {
  var at = performance.timeOrigin + performance.now();
  document.querySelector('[data-testid="sign-in"]').click();
  return at;
})()"""


def _open_url(url: str) -> str:
    return f"""(function () {{
  var at = performance.timeOrigin + performance.now();
  window.pywebview.api.open_url({json.dumps(url)});
  return at;
}})()"""


def _painted(devtools: Any, main_id: str) -> float | None:
    """The paint time of the sign-in page in a window other than the main one, if it has painted."""
    for page in devtools.pages():
        if page["id"] == main_id:
            continue
        try:
            value = devtools.evaluate(page, _PAINTED, timeout=5)
        except Exception:  # a page replaced or gone while asked (the consent window swaps its first page)
            devtools.forget({main_id})
            continue
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def _only_main(devtools: Any, main_id: str) -> bool:
    return [p["id"] for p in devtools.pages()] == [main_id]


def _wait(check: Any, what: str, timeout: float = 20.0, interval: float = 0.03) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"timed out waiting for {what}")


class Opener:
    """The peer process: a minimal pywebview window that opens a second window on a URL."""

    def __init__(self, gui: Any, harness: Any) -> None:
        page = gui.tmp / "opener.html"
        page.write_text(PEER_PAGE)
        port = harness.free_port()
        env = {**gui.env(), "QTWEBENGINE_REMOTE_DEBUGGING": f"127.0.0.1:{port}", "QTWEBENGINE_DISABLE_SANDBOX": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(gui.tmp / "opener.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.gui_child", "opener", page.as_uri()],
                env=env,
                cwd=gui.tmp,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.devtools = harness.DevTools(port)

        def ready() -> str | None:
            if self.proc.poll() is not None:
                raise BenchError(f"the peer window exited with {self.proc.returncode}")
            try:
                pages = self.devtools.pages()
                if len(pages) == 1 and self.devtools.evaluate(pages[0], "document.body.dataset.ready === 'true'"):
                    return str(pages[0]["id"])
            except (OSError, AssertionError, ValueError):
                return None
            return None

        self.main_id: str = _wait(ready, "the peer window", timeout=40, interval=0.1)

    def main_page(self) -> dict[str, Any]:
        return next(p for p in self.devtools.pages() if p["id"] == self.main_id)

    def close(self) -> None:
        self.devtools.close()
        kill_group(self.proc)


def _fresh_url(gui: Any, profile_name: str) -> tuple[str, LoginFlow]:
    """The sandbox's authorize URL for the profile, as a sign-in would open it (a listener bound for it)."""
    from zephr_desktop.config import load_profiles

    profile = load_profiles(gui.config_path).get(profile_name)
    flow = LoginFlow(profile, DEFAULT_CLIENT_SECRET, store=store_for(gui), timeout=30)
    return flow.start(), flow


def _end_flow(flow: LoginFlow) -> None:
    flow.cancel()
    with contextlib.suppress(LoginCancelledError):
        flow.wait()


def signin_figure(gui: Any, harness: Any, sb: Sandbox, profile_name: str, rounds: int) -> Figure:
    """Figure 6: the app's Sign in click to the sign-in page painted, against the bare second window."""
    del sb  # the profile already points at it
    opener = Opener(gui, harness)
    try:
        devtools = gui.devtools

        def app_round() -> float:
            if not _only_main(devtools, gui.main_page_id):
                raise BenchError("a window other than the main one is open before the round")
            before = time.time() * 1000.0
            clicked = float(gui.js(_CLICK_SIGN_IN))
            painted = _wait(lambda: _painted(devtools, gui.main_page_id), "the sign-in page in the consent window")
            after = time.time() * 1000.0
            gui.click("cancel")
            _wait(lambda: _only_main(devtools, gui.main_page_id), "the consent window to close")
            devtools.forget({gui.main_page_id})
            return _interval(before, clicked, painted, after)

        def peer_round() -> float:
            url, flow = _fresh_url(gui, profile_name)
            try:
                before = time.time() * 1000.0
                clicked = float(opener.devtools.evaluate(opener.main_page(), _open_url(url)))
                painted = _wait(lambda: _painted(opener.devtools, opener.main_id), "the sign-in page in the window")
                after = time.time() * 1000.0
            finally:
                _end_flow(flow)
            opener.devtools.evaluate(opener.main_page(), "window.pywebview.api.close_others().then(() => true)")
            _wait(lambda: _only_main(opener.devtools, opener.main_id), "the second window to close")
            opener.devtools.forget({opener.main_id})
            return _interval(before, clicked, painted, after)

        results = interleave({"app": app_round, "peer": peer_round}, rounds)
    finally:
        opener.close()
    return Figure(
        "6",
        LABEL,
        "ms",
        samples("zephr-desktop gui", results["app"]),
        samples(PEER_LABEL, results["peer"]),
        PEER_LABEL,
        target=SIGNIN_TARGET,
    )


def _interval(before: float, clicked: float, painted: float, after: float) -> float:
    """Milliseconds from the click to the paint, once both pages' clocks agree with Python's."""
    slack = CLOCK_SLACK * 1000.0
    if not before - slack <= clicked < painted <= after + slack:
        raise BenchError("the pages' clocks disagree with Python's")
    return painted - clicked


def failed_figure(error: str) -> Figure:
    """The row, saying why it could not be measured."""
    return Figure("6", LABEL, "ms", None, None, PEER_LABEL, target=SIGNIN_TARGET, error=error)
