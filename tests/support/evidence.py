"""A pytest plugin that keeps the evidence for docs/RELIABILITY.md.

Tests marked ``@pytest.mark.reliability("row")`` call :func:`record` with what they tried and
measured; at the end of the run the figures, every marked test's outcome and a summary of the
whole session go to ``tests/artifacts/reliability.json``, which ``scripts/reliability_report.py``
turns into the table. Nothing is written by a run that ran no marked test, so running one
module does not wipe the evidence of the last full run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "tests" / "artifacts" / "reliability.json"
MARKER = "reliability"

_lock = threading.Lock()
_rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
_current_row: str | None = None
_session: dict[str, Any] = {"started": time.time(), "outcomes": {}}


def _row(name: str) -> dict[str, list[dict[str, Any]]]:
    return _rows.setdefault(name, {"tests": [], "figures": []})


def record(**figures: Any) -> None:
    """Add figures (counts, timings, what held) to the row of the reliability test now running."""
    if _current_row is None:
        raise RuntimeError("record() needs a test marked @pytest.mark.reliability('row')")
    record_row(_current_row, **figures)


def record_row(row: str, **figures: Any) -> None:
    """Add figures to a named row (for evidence gathered outside a test, e.g. at session end)."""
    with _lock:
        _row(row)["figures"].append(figures)


def _row_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    return str(marker.args[0]) if marker and marker.args else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(row): a reliability test; its figures go to RELIABILITY.md")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    global _current_row
    _current_row = _row_of(item)
    try:
        yield
    finally:
        _current_row = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    # One verdict per test: a failure in any phase wins, then a skip; the call's duration counts.
    verdicts = _session["outcomes"]
    before = verdicts.get(item.nodeid, "passed")
    now = report.outcome if report.outcome != "passed" else before
    verdicts[item.nodeid] = "failed" if "failed" in (before, now) else now
    row = _row_of(item)
    if row is None:
        return
    with _lock:
        tests = _row(row)["tests"]
        entry = next((t for t in tests if t["nodeid"] == item.nodeid), None)
        if entry is None:
            entry = {"nodeid": item.nodeid, "outcome": "passed", "seconds": 0.0}
            tests.append(entry)
        entry["outcome"] = verdicts[item.nodeid]
        if report.when == "call":
            entry["seconds"] = round(report.duration, 3)


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not any(row["tests"] for row in _rows.values()):
        return
    verdicts = list(_session["outcomes"].values())
    commit = _git("log", "-1", "--format=%H")
    doc = {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - _session["started"], 1),
        "commit": commit or None,
        # The generated docs (screenshots, these tables) change with every run: code changes are what count.
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs"))
        if commit
        else None,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "cpus": os.cpu_count(),
        "session": {
            "tests": len(verdicts),
            "passed": verdicts.count("passed"),
            "failed": verdicts.count("failed"),
            "skipped": verdicts.count("skipped"),
            "exitstatus": int(session.exitstatus),
        },
        "rows": _rows,
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    tmp = ARTIFACT.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, ARTIFACT)
