"""Figures 8 and 9: hours, not seconds - the app and four `token` loops over many short token lifetimes.

Each side gets its own sandbox issuing 5-second access tokens (one refresh token, kept), a
profile signed in against it, and runs until its sandbox has counted the planned number of
refresh grants. Both run at once (they share nothing but the machine).

8. The app (``zephr-desktop gui --profile soak`` through the GUI tests' harness, auto refresh
   on as it starts): a sampler reads the token panel through the DevTools port about ten times
   a second and looks the token it shows up in the sandbox's issue log; a MutationObserver in
   the page counts every moment its countdown says "Expired". The PSS of the app's whole
   process tree is read after each refresh.
9. Four processes, each calling ``python -m zephr_desktop token -p soak`` in a loop (a short
   pause between calls): each printed token is looked up in the same way at the moment the call
   returned.

A cycle is one token lifetime: from a refresh (or the sign-in) to the expiry of the token it
issued. In each, exactly one refresh must reach the sandbox (none early, none twice) and no
token that has expired may be shown or printed while a refresh token is held.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zephr_desktop.sandbox import Sandbox, SandboxSettings

from .env import Workspace
from .fixtures import add_profile, sign_in, start_sandbox
from .procs import MIB, process_uss, tree_memory
from .stats import BenchError, Figure, samples

LIFETIME = 5  # seconds: the sandbox's expires_in
PROFILE = "soak"
LOOPS = 4
LOOP_PAUSE = 0.2  # seconds between two calls of one loop
SAMPLE_EVERY = 0.1  # seconds between two reads of the token panel
POLL_EVERY = 0.02  # seconds between two reads of the sandbox's counters
MEMORY_GROWTH_TARGET = 1.05
# A call that finds the token due while another refreshes waits for that refresh, then reads the new token:
# at most about twice the refreshing call (it may start just before the refresh and end just after it).
CONTENTION_TARGET = 2.0
CHILD_TIMEOUT = 60.0
COLLECT_SETTLE = 2.0  # seconds after the forced garbage collection before the memory is read
DUE_AGE = LIFETIME * 2 / 3  # a token is refreshed once less than a third of its lifetime is left
DUE_SLACK = 0.3  # seconds: the client's clock starts a token's life a little before the sandbox issues it

_WATCH_EXPIRED = """(function () {
  var pill = document.querySelector('[data-testid="expires-in"]');
  if (!pill) return false;
  window.__soakExpired = 0;
  new MutationObserver(function () {
    if (pill.textContent === 'Expired' && pill.offsetParent !== null) window.__soakExpired++;
  }).observe(pill, {subtree: true, childList: true, characterData: true});
  return true;
})()"""

_SHOWN = """(function () {
  var e = document.querySelector('[data-testid="access-token"]');
  return e && e.offsetParent !== null ? e.textContent : '';
})()"""


@dataclass
class IssueLog:
    """What the sandbox issued and when (seen by polling: each time is at most POLL_EVERY late)."""

    sb: Sandbox
    first_seen: dict[str, float] = field(default_factory=dict)  # access token -> when it was first seen
    earliest: dict[str, float] = field(default_factory=dict)  # access token -> the poll before (a lower bound)
    refreshes: list[float] = field(default_factory=list)  # when each refresh grant was first counted
    _seen_issued: int = 0
    _seen_refreshes: int = 0
    _last_poll: float = 0.0

    def poll(self) -> None:
        """Record new tokens and refresh grants."""
        now = time.time()
        issued = self.sb.issued
        for body in issued[self._seen_issued :]:
            token = str(body.get("access_token"))
            self.first_seen.setdefault(token, now)
            self.earliest.setdefault(token, self._last_poll or now)
        self._seen_issued = len(issued)
        count = self.sb.stats.get("token_refresh_token", 0)
        self.refreshes += [now] * (count - self._seen_refreshes)
        self._seen_refreshes = count
        self._last_poll = now

    def expired_at(self, token: str, at: float) -> bool | None:
        """True when ``token`` had certainly expired at ``at`` (None: a token the sandbox never issued)."""
        seen = self.first_seen.get(token)
        return None if seen is None else at > seen + LIFETIME


def per_cycle(starts: list[float]) -> list[int]:
    """Refreshes in each cycle: a token's life from its issue until a refresh replaced it.

    ``starts`` are the issue times of the tokens, in order (the sign-in's, then each refresh's).
    The refresh that ends a cycle comes once the token is due (two thirds of its lifetime); one
    that comes sooner refreshed a token that was not due, so it counts as a second refresh of
    the cycle before (two processes refreshing the same token would show up so). A refresh that
    comes late is still the one refresh of its cycle: a token shown or printed after it expired
    is the other figure's count.
    """
    counts: list[int] = []
    for before, after in itertools.pairwise(starts):
        if counts and after - before < DUE_AGE - DUE_SLACK:
            counts[-1] += 1
        else:
            counts.append(1)
    return counts


def refresh_ages(starts: list[float], refreshes: list[float]) -> list[float]:
    """Seconds from each token's issue to the refresh that replaced it."""
    return [b - a for a, b in zip(starts, refreshes, strict=False) if b > a]


class Poller:
    """Polls an issue log in a thread until stopped."""

    def __init__(self, log: IssueLog) -> None:
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-issue-poll", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_EVERY):
            self.log.poll()

    def __enter__(self) -> Poller:
        self.log.poll()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.log.poll()


def _wait_refreshes(
    log: IssueLog, cycles: int, deadline: float, on_refresh: Callable[[int], None], alive: Callable[[], bool]
) -> None:
    """Block until the log counted ``cycles`` refreshes, calling ``on_refresh(n)`` after each."""
    done = 0
    while done < cycles:
        if time.monotonic() > deadline:
            raise BenchError(f"only {done} of {cycles} refreshes happened in time")
        if not alive():
            raise BenchError(f"stopped after {done} of {cycles} refreshes")
        count = len(log.refreshes)
        while done < min(count, cycles):
            done += 1
            on_refresh(done)
        time.sleep(0.05)


# -- 8: the app ------------------------------------------------------------------------------------------
@dataclass
class AppRun:
    """What the app soak saw."""

    log: IssueLog
    starts: list[float]
    samples_taken: int = 0
    blank_samples: int = 0
    expired_samples: list[float] = field(default_factory=list)  # when an expired token was on screen
    unknown_samples: int = 0
    page_expired: int = 0
    pss: dict[int, int] = field(default_factory=dict)  # cycle -> PSS bytes
    uss: dict[int, int] = field(default_factory=dict)
    python_uss: dict[int, int] = field(default_factory=dict)  # the app's own (Python and Qt) process alone
    page: dict[int, object] = field(default_factory=dict)  # cycle -> [DOM elements, pending bridge callbacks]
    processes: int = 0
    collected_pss: int | None = None  # after the last cycle, once the page's engine collected its garbage


_PAGE_SIZE = """JSON.stringify([document.getElementsByTagName('*').length,
  Object.keys((window.pywebview && window.pywebview._returnValues) || {}).length])"""


def run_app(gui: Any, sb: Sandbox, cycles: int, budget: float, memory_from: int) -> AppRun:
    """Launch the app on the soak profile and watch it through ``cycles`` refreshes."""
    log = IssueLog(sb)
    with Poller(log):
        sign_in(gui, add_profile(gui, sb, PROFILE, default=True))
        gui.launch(PROFILE)
        if not gui.js(_WATCH_EXPIRED):
            raise BenchError("the app did not show the token panel for the soak profile")
        run = AppRun(log, [])
        stop = threading.Event()
        errors: list[str] = []

        def sample() -> None:
            while not stop.wait(SAMPLE_EVERY):
                at = time.time()
                try:
                    shown = str(gui.js(_SHOWN) or "")
                except Exception as exc:  # the deadline or a broken page: reported after the wait
                    errors.append(str(exc).splitlines()[0])
                    return
                run.samples_taken += 1
                if not shown:
                    run.blank_samples += 1
                    continue
                expired = log.expired_at(shown, at)
                if expired is None:
                    run.unknown_samples += 1
                elif expired:
                    run.expired_samples.append(at)

        def weigh(n: int) -> None:
            pss, uss, count = tree_memory(gui.app.pid)
            run.pss[n], run.uss[n] = pss, uss
            run.python_uss[n] = process_uss(gui.app.pid)
            run.processes = max(run.processes, count)
            if n in (memory_from, cycles):
                with contextlib.suppress(Exception):
                    run.page[n] = json.loads(str(gui.js(_PAGE_SIZE)))

        sampler = threading.Thread(target=sample, name="bench-soak-sampler", daemon=True)
        sampler.start()
        try:
            _wait_refreshes(
                log,
                cycles,
                time.monotonic() + budget,
                weigh,
                lambda: not errors and gui.app is not None and gui.app.poll() is None,
            )
            run.page_expired = int(gui.js("window.__soakExpired") or 0)
            run.collected_pss = _pss_after_collection(gui)
        finally:
            stop.set()
            sampler.join(10)
        if errors:
            raise BenchError(f"reading the token panel failed: {errors[0]}")
    run.starts = sorted(log.first_seen.values())
    return run


# -- 9: four token loops --------------------------------------------------------------------------------
@dataclass
class Call:
    """One ``token`` call of a loop."""

    started: float
    ended: float
    code: int
    token: str


def run_loops(ws: Workspace, sb: Sandbox, cycles: int, budget: float) -> tuple[IssueLog, list[Call]]:
    """Four loops calling ``token`` until the sandbox counted ``cycles`` refreshes."""
    log = IssueLog(sb)
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()
    argv = [sys.executable, "-m", "zephr_desktop", "token", "-p", PROFILE]

    def loop() -> None:
        while not stop.is_set():
            started = time.time()
            try:
                proc = subprocess.run(
                    argv, env=ws.env(), cwd=ws.root, capture_output=True, text=True, timeout=CHILD_TIMEOUT
                )
                code, out = proc.returncode, proc.stdout.strip()
            except subprocess.TimeoutExpired:
                code, out = -1, ""
            with lock:
                calls.append(Call(started, time.time(), code, out))
            stop.wait(LOOP_PAUSE)

    with Poller(log):
        profile = add_profile(ws, sb, PROFILE)
        sign_in(ws, profile)
        threads = [threading.Thread(target=loop, name=f"bench-token-loop-{i}", daemon=True) for i in range(LOOPS)]
        for thread in threads:
            thread.start()
        try:
            _wait_refreshes(log, cycles, time.monotonic() + budget, lambda _n: None, lambda: True)
        finally:
            stop.set()
            for thread in threads:
                thread.join(CHILD_TIMEOUT)
    return log, calls


# -- the figures ------------------------------------------------------------------------------------------
def _pss_after_collection(gui: Any) -> int | None:
    """The tree's PSS once the main page's engine has run a full garbage collection (DevTools asks it to).

    Not a figure: it tells memory the engine still holds from memory it would give back.
    """
    try:
        gui.cdp("HeapProfiler.collectGarbage")
    except Exception:  # an engine without the HeapProfiler domain: the cause then says less
        return None
    time.sleep(COLLECT_SETTLE)
    return tree_memory(gui.app.pid)[0]


def _median_mib(values: dict[int, int], cycles: range) -> float | None:
    picked = [values[n] / MIB for n in cycles if n in values]
    return round(statistics.median(picked), 1) if picked else None


def _memory_window(pss: dict[int, int], first: int, last: int, span: int) -> tuple[list[float], list[float]]:
    early = [pss[n] / MIB for n in range(first, first + span) if n in pss]
    late = [pss[n] / MIB for n in range(last - span + 1, last + 1) if n in pss]
    return early, late


def app_figures(run: AppRun, cycles: int, memory_from: int) -> list[Figure]:
    """Figures 8a-8c."""
    counts = per_cycle(run.starts)
    ages = refresh_ages(run.starts, run.log.refreshes)
    span = max(1, min(5, cycles // 10))
    early, late = _memory_window(run.pss, memory_from, cycles, span)
    early_cycles, late_cycles = range(memory_from, memory_from + span), range(cycles - span + 1, cycles + 1)
    expired_moments = len(run.expired_samples) + run.page_expired
    extra: dict[str, object] = {
        "cycles": cycles,
        "samples": run.samples_taken,
        "blank_samples": run.blank_samples,
        "unknown_samples": run.unknown_samples,
        "expired_samples": len(run.expired_samples),
        "page_expired": run.page_expired,
        "refresh_age_s": {
            "median": round(statistics.median(ages), 2),
            "min": round(min(ages), 2),
            "max": round(max(ages), 2),
        }
        if ages
        else {},
        "memory_from": memory_from,
        "memory_span": span,
        "uss_mib": {"early": _median_mib(run.uss, early_cycles), "late": _median_mib(run.uss, late_cycles)},
        # Where it grows: the app's own process (Python, Qt, the compositor) against the web engine's others.
        "python_uss_mib": {
            "early": _median_mib(run.python_uss, early_cycles),
            "late": _median_mib(run.python_uss, late_cycles),
        },
        "processes": run.processes,
        "page_size": {str(n): v for n, v in run.page.items()},
        "collected_pss_mib": round(run.collected_pss / MIB, 1) if run.collected_pss else None,
    }
    return [
        Figure(
            "8a",
            f"app, {cycles} refresh cycles of a 5 s token: moments an expired token was shown",
            "",
            samples("expired moments", [float(expired_moments)]),
            None,
            "-",
            target=0.0,
            target_kind="absolute",
            extra=extra,
        ),
        Figure(
            "8b",
            "app: refreshes at the sandbox in each cycle (one token's life)",
            "",
            samples("refreshes per cycle", [float(c) for c in counts]),
            None,
            "-",
            target=1.0,
            target_kind="each",
            extra=extra,
        ),
        Figure(
            "8c",
            f"app: memory (PSS of the process tree) at cycle {cycles} vs cycle {memory_from}",
            "MiB",
            samples(f"cycle {cycles}", late),
            samples(f"cycle {memory_from}", early),
            f"the same app at cycle {memory_from}",
            target=MEMORY_GROWTH_TARGET,
            extra=extra,
        ),
    ]


def loop_figures(log: IssueLog, calls: list[Call], cycles: int) -> list[Figure]:
    """Figures 9a-9c."""
    starts = sorted(log.first_seen.values())
    counts = per_cycle(starts)
    failed = [c for c in calls if c.code != 0 or not c.token]
    expired = [c for c in calls if c.code == 0 and c.token and log.expired_at(c.token, c.ended)]
    unknown = [c for c in calls if c.code == 0 and c.token and log.expired_at(c.token, c.ended) is None]
    # Each lifetime's longest call against its refreshing call (the earliest call that printed the token
    # that refresh issued): a call that found the token due waits on the lock for that one refresh at most.
    longest, refreshing = [], []
    for start in starts[1 : len(counts) + 1]:
        inside = [c.ended - c.started for c in calls if abs(c.started - start) <= LIFETIME / 3]
        makers = [
            c for c in calls if c.code == 0 and c.token and log.first_seen.get(c.token) == start and c.started <= start
        ]
        if inside and makers:
            maker = min(makers, key=lambda c: c.started)
            longest.append(max(inside))
            refreshing.append(maker.ended - maker.started)
    fast = [c.ended - c.started for c in calls if c.code == 0]
    extra: dict[str, object] = {
        "cycles": cycles,
        "calls": len(calls),
        "failed": len(failed),
        "unknown_tokens": len(unknown),
        "loops": LOOPS,
        "pause_s": LOOP_PAUSE,
        "call_median_ms": round(statistics.median(fast) * 1000, 1) if fast else None,
    }
    return [
        Figure(
            "9a",
            f"4 token loops, {cycles} refresh cycles of a 5 s token: expired tokens printed or failed calls",
            "",
            samples("expired or failed", [float(len(expired) + len(failed))]),
            None,
            "-",
            target=0.0,
            target_kind="absolute",
            extra=extra,
        ),
        Figure(
            "9b",
            "4 token loops: refreshes at the sandbox in each cycle",
            "",
            samples("refreshes per cycle", [float(c) for c in counts]),
            None,
            "-",
            target=1.0,
            target_kind="each",
            extra=extra,
        ),
        Figure(
            "9c",
            "4 token loops: the longest call around each refresh vs the refreshing call",
            "ms",
            samples("longest call", longest, 1000.0),
            samples("the refreshing call", refreshing, 1000.0),
            "the call that refreshed",
            target=CONTENTION_TARGET,
            extra=extra,
        ),
    ]


def failed(error: str, cycles: int) -> list[Figure]:
    """The rows, each saying why it could not be measured."""
    rows = [
        ("8a", "app: moments an expired token was shown", 0.0, "absolute"),
        ("8b", "app: refreshes at the sandbox in each cycle (one token's life)", 1.0, "each"),
        ("8c", "app: memory (PSS of the process tree) growth", MEMORY_GROWTH_TARGET, "ratio"),
        ("9a", "4 token loops: expired tokens printed or failed calls", 0.0, "absolute"),
        ("9b", "4 token loops: refreshes at the sandbox in each cycle", 1.0, "each"),
        (
            "9c",
            "4 token loops: the longest call around each refresh vs the refreshing call",
            CONTENTION_TARGET,
            "ratio",
        ),
    ]
    return [
        Figure(
            key, label, "", None, None, "-", target=target, target_kind=kind, error=f"{error} ({cycles} cycles planned)"
        )
        for key, label, target, kind in rows
    ]


def soak_figures(tmp: Path, *, cycles: int, memory_from: int, budget: float) -> list[Figure]:
    """Figures 8 and 9, run at the same time; a soak that cannot run yields rows that say why."""
    from gui import harness

    app_sb = start_sandbox(SandboxSettings(expires_in=LIFETIME))
    loop_sb = start_sandbox(SandboxSettings(expires_in=LIFETIME))
    ws = Workspace(tmp / "soak-cli")
    results: dict[str, Any] = {}

    def loops() -> None:
        try:
            results["loops"] = run_loops(ws, loop_sb, cycles, budget)
        except Exception as exc:
            results["loops_error"] = exc

    try:
        with harness.GuiApp(tmp / "soak-gui", timeout=budget + 120, env={"QTWEBENGINE_DISABLE_SANDBOX": "1"}) as gui:
            side = threading.Thread(target=loops, name="bench-soak-loops", daemon=True)
            side.start()
            try:
                app_run = run_app(gui, app_sb, cycles, budget, memory_from)
            finally:
                side.join(budget + 60)
        figures = app_figures(app_run, cycles, memory_from)
    except (BenchError, AssertionError, OSError, subprocess.SubprocessError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        figures = failed(f"the app soak could not run: {first}", cycles)[:3]
    finally:
        with contextlib.suppress(Exception):
            app_sb.stop()
    try:
        if "loops_error" in results:
            raise results["loops_error"]
        if "loops" not in results:
            raise BenchError("the loops did not finish")
        figures += loop_figures(*results["loops"], cycles)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        figures += failed(f"the token loops could not run: {first}", cycles)[3:]
    finally:
        loop_sb.stop()
    return figures
