"""Figures 4, 5 and 7a: the desktop app's cold start and memory, and Allow to token, under Xvfb.

Everything runs under private X servers started by the GUI tests' harness
(``tests/gui/harness.py``: ``Xvfb -displayfd``, own process group, hard timeout, group killed),
which reads the app's pages through the web engine's DevTools port.

4. Cold start: the real app (``zephr-desktop gui --profile NAME`` through the CLI, a signed-in
   profile, so the page draws the token panel) against a minimal pywebview window (Qt backend,
   private mode like the app, same environment) showing a static page; alternately, each a new
   process group, from spawn to the page marking itself ready (see ``gui_child``). Memory is the
   PSS of every process in the child's session (the Python process and QtWebEngine's zygote,
   renderer, GPU and utility processes), read from ``/proc/PID/smaps_rollup`` a fixed
   settling time after the page is ready, the same for both. The CPU time the tree used up to
   ready is kept beside the times (``schedstat``): work done, which other programs do not shift.
5. Allow to token: the app, launched by the harness, with the benchmark's probe (bench/probe: a
   few timestamps from inside the app); each round presses Sign in, signs in on the sandbox's
   page in the consent window, then clicks Allow there. The interval runs from the click (the
   consent page's clock) to the first frame after the new token appears in the main window's
   token panel (the main page's clock), read by a MutationObserver installed before the click;
   the probe's marks split it into its parts. Next to it: the sandbox token endpoint's own
   round trip (a refresh grant over a fresh connection), measured in the same run.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zephr_desktop.config import load_profiles
from zephr_desktop.resources import assets_dir
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TEST_USERS, Sandbox

from . import signin_bench
from .env import REPO
from .fixtures import add_profile, scripted_user, sign_in, store_for
from .gui_child import PEER_PAGE, PEER_READY_JS, REPORT_FD
from .procs import CLOCK_SLACK, MIB, kill_group, tree_cpu, tree_memory
from .stats import BenchError, Figure, interleave, samples

START_TARGET = 1.10
MEMORY_TARGET = 1.15
ALLOW_TARGET_MS = 50.0
START_LABEL = "desktop app cold start to main page ready"
MEMORY_LABEL = "memory: PSS of the whole process tree, page ready"
ALLOW_LABEL = "Allow to token visible in the main window"
LAUNCH_TIMEOUT = 30.0  # a cold start takes about a second; this is a hang
# The page's clock (performance.timeOrigin + now) may run a little ahead of Python's time.time().
PEER_LABEL = "minimal pywebview window (Qt), static page"
EMAIL = "joe@example.com"
APP_SCRIPT_TAG = '<script src="app.js"></script>'


def load_harness() -> Any:
    """The GUI tests' harness module (Xvfb, process groups, the web engine's DevTools port)."""
    from gui import harness

    return harness


# -- figure 4: cold start and memory ------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """One cold start: seconds from spawn to ready (and to pywebview's loaded event), the tree's PSS."""

    seconds: float
    start_seconds: float  # spawn to webview.start(): the Python side's own start-up
    loaded_seconds: float
    clock: str
    hop_seconds: float  # from the page's ready mark to Python receiving it (a clock sanity check)
    pss_bytes: int
    uss_bytes: int
    processes: int
    cpu_seconds: float  # CPU time of the whole tree from spawn to ready


def _read_ready(fd: int, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, tuple[float, str, float]]:
    """Wait for the child's ``loaded`` and ``ready`` lines; each event's epoch time, clock, and receipt time."""
    buffer = b""
    events: dict[str, tuple[float, str, float]] = {}
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            buffer += chunk
            for line in buffer.decode(errors="replace").split("\n")[:-1]:  # complete lines only
                name, at, *rest = line.split()
                events[name] = (float(at), rest[0] if rest else "python-clock", float(rest[1]) if rest else float(at))
            if {"start", "loaded", "ready"} <= set(events):
                return events
            if not chunk and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    seen = ", ".join(sorted(events)) or "no event"
    raise BenchError(
        f"the window did not report ready within {LAUNCH_TIMEOUT:.0f} s ({seen} seen; exit code {proc.poll()})"
    )


def launch_once(argv: list[str], env: dict[str, str], cwd: Path, log: Path, settle: float) -> Launch:
    """Start one child in its own session, time it to ready, weigh its process tree, kill it."""
    read_fd, write_fd = os.pipe()
    with open(log, "ab") as out:
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gui_child", *argv],
            env={**env, REPORT_FD: str(write_fd)},
            cwd=cwd,
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    os.close(write_fd)
    try:
        events = _read_ready(read_fd, proc, time.monotonic() + LAUNCH_TIMEOUT)
        cpu = tree_cpu(proc.pid)
        time.sleep(settle)  # let the engine's processes settle before weighing them, the same for both
        pss, uss, count = tree_memory(proc.pid)
    except BenchError as exc:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise BenchError(f"{argv[0]}: {exc}\n{tail}") from None
    finally:
        kill_group(proc)
        os.close(read_fd)
    (ready_at, clock, received), (loaded_at, _, _) = events["ready"], events["loaded"]
    start_at = events["start"][0]
    if not started < ready_at <= received + CLOCK_SLACK:
        raise BenchError(f"the page's clock disagrees with Python's ({(received - ready_at) * 1000:.1f} ms)")
    return Launch(
        ready_at - started, start_at - started, loaded_at - started, clock, received - ready_at, pss, uss, count, cpu
    )


def launcher(
    gui: Any, argv: list[str], settle: float, runs: list[Launch], hangs: list[str], xdg: dict[str, Path] | None = None
) -> Callable[[], float]:
    """A timer for one contender: each call starts it once, records the Launch, returns its seconds.

    ``xdg`` points the child at other XDG dirs than the harness's (figure 7's workspaces).
    """
    env = {k: v for k, v in gui.env().items() if k != "BENCH_PROBE_FILE"}  # as a person runs it
    env["QTWEBENGINE_DISABLE_SANDBOX"] = "1"  # the app sets it itself as root; the peer needs it too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update({k: str(v) for k, v in (xdg or {}).items()})
    log = gui.tmp / f"{argv[0]}.log"

    def once() -> float:
        try:
            launch = launch_once(argv, env, gui.tmp, log, settle)
        except BenchError as exc:
            # One start that never gets ready is recorded and retried; two in a row break the benchmark.
            hangs.append(f"{argv[0]}: {str(exc).splitlines()[0]}")
            launch = launch_once(argv, env, gui.tmp, log, settle)
        runs.append(launch)
        return launch.seconds

    return once


def app_page_copy(tmp: Path) -> Path | None:
    """The app's own page, copied, marking itself ready on ``pywebviewready`` like the peer's page.

    Shown in the minimal window it splits the app's extra start time into what its page costs
    the web engine and what its Python side and bridge cost. None if the page's shape changed.
    """
    target = tmp / "app-page"
    shutil.copytree(assets_dir(), target, dirs_exist_ok=True)
    index = target / "index.html"
    html = index.read_text()
    if APP_SCRIPT_TAG not in html:
        return None
    # An external script: the page's Content-Security-Policy forbids inline ones.
    (target / "bench-ready.js").write_text(PEER_READY_JS)
    index.write_text(html.replace(APP_SCRIPT_TAG, f'<script src="bench-ready.js"></script>{APP_SCRIPT_TAG}'))
    return index


def cold_start_figures(gui: Any, sb: Sandbox, rounds: int, settle: float) -> list[Figure]:
    """Figures 4a and 4b: the app against the minimal window, alternately."""
    profile = add_profile(gui, sb, "bench", default=True)
    sign_in(gui, profile, scripted_user())  # a signed-in profile: the page draws the token panel
    page = gui.tmp / "peer.html"
    page.write_text(PEER_PAGE)
    runs: dict[str, list[Launch]] = {"app": [], "peer": [], "app_page": []}
    hangs: list[str] = []
    timers = {
        "app": launcher(gui, ["app", profile.name], settle, runs["app"], hangs),
        "peer": launcher(gui, ["peer", page.as_uri()], settle, runs["peer"], hangs),
    }
    app_page = app_page_copy(gui.tmp)
    if app_page is not None:
        timers["app_page"] = launcher(gui, ["peer", app_page.as_uri()], settle, runs["app_page"], hangs)
    interleave(timers, rounds)
    app, peer = runs["app"][-rounds:], runs["peer"][-rounds:]  # the warm-up round is dropped
    sides = {"app": app, "peer": peer}
    if runs["app_page"]:
        sides["app_page"] = runs["app_page"][-rounds:]
    clocks = {k: sorted({x.clock for x in v}) for k, v in sides.items()}

    def medians(value: Callable[[Launch], float], digits: int = 1) -> dict[str, float]:
        return {k: round(statistics.median(value(x) for x in v), digits) for k, v in sides.items()}

    extra: dict[str, object] = {
        "clocks": clocks,
        # Where the time goes: spawn to webview.start() (Python), to pywebview's loaded event (Qt and the
        # page), then to the page's ready mark (the app's init call and first render).
        # The minimal window showing the app's own page (no bridge, no app Python) - see app_page_copy().
        "ready_ms": medians(lambda x: x.seconds * 1000),
        "to_start_ms": medians(lambda x: x.start_seconds * 1000),
        "start_to_loaded_ms": medians(lambda x: (x.loaded_seconds - x.start_seconds) * 1000),
        "loaded_to_ready_ms": medians(lambda x: (x.seconds - x.loaded_seconds) * 1000),
        "page_to_python_hop_ms": medians(lambda x: x.hop_seconds * 1000, 2),
        "uss_mib": medians(lambda x: x.uss_bytes / MIB),
        "cpu_ms": medians(lambda x: x.cpu_seconds * 1000),
        "processes": {k: max(x.processes for x in v) for k, v in sides.items()},
        "settle_s": settle,
        "starts_retried": hangs,
    }
    return [
        Figure(
            "4a",
            START_LABEL,
            "ms",
            samples("zephr-desktop gui", [x.seconds for x in app], 1000.0),
            samples(PEER_LABEL, [x.seconds for x in peer], 1000.0),
            PEER_LABEL,
            target=START_TARGET,
            extra=extra,
        ),
        Figure(
            "4b",
            MEMORY_LABEL,
            "MiB",
            samples("zephr-desktop gui", [x.pss_bytes / MIB for x in app]),
            samples(PEER_LABEL, [x.pss_bytes / MIB for x in peer]),
            PEER_LABEL,
            target=MEMORY_TARGET,
            extra=extra,
        ),
    ]


# -- figure 5: Allow to token ----------------------------------------------------------------------------------
_WATCH_TOKEN = """(function () {
  var sel = '[data-testid="access-token"]';
  var el = document.querySelector(sel);
  var before = el ? el.textContent : '';
  window.__benchSeenAt = null; window.__benchPaintAt = null;
  var watcher = new MutationObserver(function () {
    var e = document.querySelector(sel);
    if (!e || e.offsetParent === null || !e.textContent || e.textContent === before) return;
    watcher.disconnect();
    window.__benchSeenAt = performance.timeOrigin + performance.now();
    requestAnimationFrame(function () { window.__benchPaintAt = performance.timeOrigin + performance.now(); });
  });
  watcher.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
  return true;
})()"""

_CLICK_ALLOW = """(function () {
  var at = performance.timeOrigin + performance.now();
  document.querySelector('#allow').click();
  return at;
})()"""

# Where the interval goes, from the probe's marks inside the app (bench/probe) and the two pages' clocks:
# (part, from mark, to mark). Each mark is the first of its name after the previous one.
PARTS = (
    ("consent page: grant, then the redirect to the listener", "clicked", "listener-start"),
    ("listener hands the callback to the flow", "listener-start", "exchange-start"),
    ("code exchange (Authlib, a new connection)", "exchange-start", "exchange-end"),
    ("gap before saving", "exchange-end", "save-start"),
    ("saving the token (fsynced, under the lock)", "save-start", "save-end"),
    ("flow returns, the session tells the page", "save-end", "push-start"),
    ("page told: its state() call reaches Python", "push-start", "snapshot-start"),
    ("reading the state (profiles, the token file)", "snapshot-start", "snapshot-end"),
    ("state back over the bridge, drawn", "snapshot-end", "seen"),
    ("drawn to the next frame", "seen", "painted"),
)


def _consent_sign_in(gui: Any) -> None:
    """Sign in on the sandbox's page in the consent window and wait for its Allow button (untimed)."""
    gui.wait_js(
        "document.readyState === 'complete' && !!document.querySelector('#email')", target="consent", timeout=20
    )
    password = TEST_USERS[EMAIL]["password"]
    gui.js(
        f"document.querySelector('#email').value = {json.dumps(EMAIL)};"
        f"document.querySelector('#password').value = {json.dumps(password)};"
        "document.querySelector('#sign-in').click(); true",
        target="consent",
    )
    gui.wait_js(
        "document.readyState === 'complete' && !!document.querySelector('#allow')", target="consent", timeout=20
    )


def read_marks(probe: Path, since: float) -> list[tuple[str, float]]:
    """The probe's marks at or after ``since`` (epoch ms), in order, in ms."""
    if not probe.exists():
        return []
    marks = []
    for line in probe.read_text().splitlines():
        name, _, at = line.partition(" ")
        with contextlib.suppress(ValueError):
            if float(at) * 1000.0 >= since:
                marks.append((name, float(at) * 1000.0))
    return marks


def split(marks: list[tuple[str, float]]) -> dict[str, float] | None:
    """Each part's milliseconds, walking the marks in order; None if one is missing."""
    times = dict.fromkeys(("clicked", "seen", "painted"), 0.0)
    times.update({name: at for name, at in marks if name in times})
    parts: dict[str, float] = {}
    at = times["clicked"]
    for label, first, last in PARTS:
        start = times.get(first) if first in ("clicked", "seen") else at
        end = (
            times.get(last)
            if last in ("seen", "painted")
            else next((t for name, t in marks if name == last and t >= (start or 0.0)), None)
        )
        if start is None or end is None or not start or not end:
            return None
        parts[label] = end - start
        at = end
    return parts


def _allow_once(gui: Any, sb: Sandbox, probe: Path | None) -> tuple[float, bool, dict[str, float] | None]:
    """One sign-in through the windows: seconds from the Allow click to the token drawn, if a frame timed it,
    and where the time went (from the probe)."""
    issued = len(sb.issued)
    gui.click("sign-in")
    _consent_sign_in(gui)
    gui.js(_WATCH_TOKEN)
    before = time.time() * 1000.0
    clicked = float(gui.js(_CLICK_ALLOW, target="consent"))
    seen = float(
        gui.wait_for(
            lambda: gui.js("window.__benchSeenAt"), "the new token in the main window", timeout=20, interval=0.05
        )
    )
    # The frame after the change is when it is visible; without one (an idle compositor), the change itself.
    painted = _poll(lambda: gui.js("window.__benchPaintAt"), 1.0)
    after = time.time() * 1000.0
    end = float(painted or seen)
    # Two pages' clocks and Python's must agree, or the interval means nothing.
    if not before - CLOCK_SLACK * 1000 <= clicked < end <= after + CLOCK_SLACK * 1000:
        raise BenchError("the consent and main pages' clocks disagree with Python's")
    shown = gui.text("access-token")
    if len(sb.issued) != issued + 1 or shown != sb.issued[-1]["access_token"]:
        raise BenchError("the main window does not show the token the sandbox just issued")
    gui.wait_for(lambda: not gui.consent().get("open"), "the consent window to close", timeout=10)
    parts = None
    if probe is not None:
        marks = [("clicked", clicked), *read_marks(probe, clicked), ("seen", seen), ("painted", end)]
        parts = split(sorted(marks, key=lambda m: m[1]))
    return (end - clicked) / 1000.0, bool(painted), parts


def _poll(check: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """``check()`` until it is truthy or the time is up (then None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def token_round_trip(sb: Sandbox, refresh_token: str) -> float:
    """The sandbox token endpoint's own round trip: a refresh grant on a fresh connection, in seconds."""
    parts = urlsplit(sb.token_url)
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": refresh_token})
    basic = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {basic}", "Accept": "application/json"}
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise BenchError(f"the sandbox token endpoint answered {response.status}")
    return elapsed


def allow_figure(gui: Any, sb: Sandbox, profile: str, rounds: int, probe: Path | None) -> Figure:
    """Figure 5: Allow to token visible, with the sandbox's own token round trip beside it."""
    allow: list[float] = []
    trips: list[float] = []
    split_rounds: list[dict[str, float]] = []
    frames = 0
    refresh = ""
    for round_no in range(rounds + 1):
        seconds, framed, parts = _allow_once(gui, sb, probe)
        if not refresh:
            loaded = store_for(gui).load(load_profiles(gui.config_path).get(profile))
            refresh = loaded.refresh_token if loaded is not None and loaded.refresh_token else ""
        if round_no == 0:
            continue  # warm-up: the first sign-in of a session pays one-off costs
        allow.append(seconds)
        frames += framed
        if parts is not None:
            split_rounds.append(parts)
        trips.extend(token_round_trip(sb, refresh) for _ in range(3))
    medians = (
        {label: round(statistics.median(p[label] for p in split_rounds), 2) for label, _, _ in PARTS}
        if split_rounds
        else {}
    )
    return Figure(
        "5",
        ALLOW_LABEL,
        "ms",
        samples("zephr-desktop gui", allow, 1000.0),
        samples("sandbox token endpoint round trip", trips, 1000.0),
        "sandbox token endpoint round trip",
        target=ALLOW_TARGET_MS,
        target_kind="absolute",
        extra={"timed_by_frame": frames, "rounds": rounds, "parts_ms": medians, "split_rounds": len(split_rounds)},
    )


# -- the section --------------------------------------------------------------------------------------------
def _failed_start(error: str) -> list[Figure]:
    return [
        Figure("4a", START_LABEL, "ms", None, None, PEER_LABEL, target=START_TARGET, error=error),
        Figure("4b", MEMORY_LABEL, "MiB", None, None, PEER_LABEL, target=MEMORY_TARGET, error=error),
    ]


def _failed_allow(error: str) -> Figure:
    return Figure(
        "5",
        ALLOW_LABEL,
        "ms",
        None,
        None,
        "sandbox token endpoint round trip",
        target=ALLOW_TARGET_MS,
        target_kind="absolute",
        error=error,
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


GUI_ERRORS = (BenchError, AssertionError, OSError, ImportError, subprocess.SubprocessError)


def start_figures(
    sb: Sandbox,
    tmp: Path,
    *,
    rounds: int,
    growth_rounds: int,
    settle: float,
    budget: float,
    growth: tuple[Any, Any] | None,
) -> list[Figure]:
    """Figures 4a, 4b and 7a (the cold starts), under one X server."""
    from . import growth as growth_figures

    try:
        harness = load_harness()
        with harness.GuiApp(tmp / "gui", timeout=budget, env={"QTWEBENGINE_DISABLE_SANDBOX": "1"}) as gui:
            figures = cold_start_figures(gui, sb, rounds, settle)
            if growth is not None:
                hangs: list[str] = []

                def timer(ws: Any, runs: list[Launch]) -> Callable[[], float]:
                    return launcher(gui, ["app", growth_figures.PROFILE], settle, runs, hangs, ws.xdg)

                try:
                    figures.append(growth_figures.start_figure(timer, growth[0], growth[1], growth_rounds))
                except GUI_ERRORS as exc:
                    figures.append(growth_figures.failed(f"the GUI could not be measured: {_first_line(exc)}")[0])
            return figures
    except GUI_ERRORS as exc:
        error = f"the GUI could not be measured: {_first_line(exc)}"
        return [*_failed_start(error), growth_figures.failed(error)[0]]


def window_figures(sb: Sandbox, tmp: Path, *, allow_rounds: int, signin_rounds: int, budget: float) -> list[Figure]:
    """Figures 6 and 5: the sign-in page opening, then Allow to token, in one app run with the probe."""

    probe = tmp / "probe.log"
    try:
        harness = load_harness()
        paths = [str(REPO / "bench" / "probe"), str(REPO), os.environ.get("PYTHONPATH", "")]
        env = {
            "QTWEBENGINE_DISABLE_SANDBOX": "1",
            "BENCH_PROBE_FILE": str(probe),
            "PYTHONPATH": os.pathsep.join(filter(None, paths)),
        }
        with harness.GuiApp(tmp / "gui-windows", timeout=budget, env=env) as gui:
            profile = add_profile(gui, sb, "bench", default=True)
            gui.launch(profile.name)
            figures: list[Figure] = []
            try:
                figures.append(signin_bench.signin_figure(gui, harness, sb, profile.name, signin_rounds))
            except GUI_ERRORS as exc:
                figures.append(signin_bench.failed_figure(f"could not be measured: {_first_line(exc)}"))
            figures.append(allow_figure(gui, sb, profile.name, allow_rounds, probe))
            return figures
    except GUI_ERRORS as exc:
        error = f"the GUI could not be measured: {_first_line(exc)}"
        return [signin_bench.failed_figure(error), _failed_allow(error)]
