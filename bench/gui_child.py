"""The GUI benchmark's child process: the real app, or the peer window, reporting when its page is ready.

    python -m bench.gui_child app PROFILE     # zephr-desktop gui --profile PROFILE, through the real CLI
    python -m bench.gui_child peer PAGE       # a minimal pywebview window (Qt) showing a static page
    python -m bench.gui_child opener PAGE     # the same, whose page can open a second window on a URL

Both report ``ready <epoch seconds> <how>`` on the file descriptor named by
``ZEPHR_BENCH_REPORT_FD`` when their page has set ``data-ready="true"`` on its body: the app's
page does that once its first bridge call (``init``) has drawn profiles and token; the peer's
static page does it on ``pywebviewready``, the earliest moment any pywebview page is usable.
The time is the page's own clock (``performance.timeOrigin + performance.now()``), read by the
same observer in both, so the hop back to Python is not counted for either.

Only the first window is watched, through a wrapper around ``webview.create_window``; the app
is otherwise run unmodified, exactly as ``zephr-desktop gui`` runs it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

REPORT_FD = "ZEPHR_BENCH_REPORT_FD"
WINDOW_SIZE = (920, 760)  # the app's main window size, so both render the same area
CONSENT_SIZE = (560, 760)  # the app's consent window size

# Resolves with the page-clock time at which body[data-ready] became "true"; if it already is, with the
# time EARLY_WATCH_JS (or the peer's own script) stored, else -1 (then Python's clock is used).
READY_JS = """
new Promise(function (resolve) {
  var stamp = function () { return performance.timeOrigin + performance.now(); };
  if (document.body.dataset.ready === 'true') { resolve(window.__benchReadyAt || -1); return; }
  var seen = new MutationObserver(function () {
    if (document.body.dataset.ready === 'true') { seen.disconnect(); resolve(stamp()); }
  });
  seen.observe(document.body, {attributes: true, attributeFilter: ['data-ready']});
})
"""

PEER_READY_JS = """window.addEventListener('pywebviewready', function () {
  window.__benchReadyAt = performance.timeOrigin + performance.now();
  document.body.dataset.ready = 'true';
});
"""

PEER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Zephr Desktop</title></head>
<body><h1>A static page</h1><p>The floor: a pywebview window on the Qt backend, and nothing else.</p>
<script>{PEER_READY_JS}</script></body></html>
"""


# Installed in the first window's page before any of its own scripts run (QWebEngineScript at document
# creation, main world): stamps the moment body[data-ready] turns "true", however early that is.
EARLY_WATCH_JS = """(function () {
  var seen = new MutationObserver(function () {
    var body = document.body;
    if (body && body.dataset.ready === 'true' && !window.__benchReadyAt) {
      window.__benchReadyAt = performance.timeOrigin + performance.now();
      seen.disconnect();
    }
  });
  seen.observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
})();"""


def _install_early_watch(window: Any) -> None:
    """Before the first window shows: add EARLY_WATCH_JS to its page (runs on the GUI thread)."""
    from qtpy.QtWebEngineCore import QWebEngineScript

    script = QWebEngineScript()
    script.setName("bench-ready-watch")
    script.setSourceCode(EARLY_WATCH_JS)
    script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
    script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)
    script.setRunsOnSubFrames(False)
    window.native.webview.page().scripts().insert(script)


def _report(line: str) -> None:
    fd = os.environ.get(REPORT_FD)
    if fd:
        os.write(int(fd), (line + "\n").encode())


def _on_ready(value: Any) -> None:
    received = time.time()  # also sent, so the parent can check the page's clock against Python's
    if isinstance(value, int | float) and value > 0:
        _report(f"ready {value / 1000.0:.6f} page-clock {received:.6f}")
    else:
        _report(f"ready {received:.6f} python-clock {received:.6f}")


def _watch(window: Any) -> None:
    """Report the first page's readiness (runs on a pywebview event thread)."""
    _report(f"loaded {time.time():.6f}")
    window.evaluate_js(READY_JS, _on_ready)


def _hook_first_window() -> None:
    import webview

    create, start = webview.create_window, webview.start
    hooked: list[Any] = []

    def start_gui(*args: Any, **kwargs: Any) -> Any:
        _report(f"start {time.time():.6f}")  # Python's own work is done; Qt and the page take over
        return start(*args, **kwargs)

    def create_window(*args: Any, **kwargs: Any) -> Any:
        window = create(*args, **kwargs)
        if window is not None and not hooked:
            hooked.append(window)
            window.events.before_show += _install_early_watch
            window.events.loaded += lambda: _watch(window)
        return window

    webview.create_window = create_window
    webview.start = start_gui


def run_app(profile: str) -> int:
    """The real app, started the way ``zephr-desktop gui --profile NAME`` starts it."""
    _hook_first_window()
    from zephr_desktop.cli import main

    return main(["gui", "--profile", profile])


def run_peer(page: str) -> int:
    """The floor: one pywebview window, Qt backend, private mode like the app, a static page."""
    _hook_first_window()
    import webview

    webview.create_window("Zephr Desktop", url=page, width=WINDOW_SIZE[0], height=WINDOW_SIZE[1])
    webview.start(gui="qt", private_mode=True)
    return 0


def run_opener(page: str) -> int:
    """The sign-in figure's peer: a minimal window whose page opens a second bare window on a URL.

    The page calls ``pywebview.api.open_url(url)`` as the app's page calls its ``sign_in``;
    the second window has the consent window's size and nothing else. ``close_others()``
    closes it again between rounds.
    """
    import webview

    others: list[Any] = []

    def open_url(url: str) -> bool:
        window = webview.create_window("Sign in", url=str(url), width=CONSENT_SIZE[0], height=CONSENT_SIZE[1])
        others.append(window)
        return window is not None

    def close_others() -> bool:
        while others:
            others.pop().destroy()
        return True

    window = webview.create_window("Zephr Desktop", url=page, width=WINDOW_SIZE[0], height=WINDOW_SIZE[1])
    if window is None:
        return 1
    window.expose(open_url, close_others)
    webview.start(gui="qt", private_mode=True)
    return 0


def main(argv: list[str]) -> int:
    """Entry point: ``app PROFILE``, ``peer PAGE`` or ``opener PAGE``."""
    runs = {"app": run_app, "peer": run_peer, "opener": run_opener}
    if len(argv) != 2 or argv[0] not in runs:
        print("usage: python -m bench.gui_child app PROFILE | peer PAGE | opener PAGE", file=sys.stderr)
        return 2
    return runs[argv[0]](argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
