"""Figures 1 and 2: ``zephr-desktop token`` against interpreter floors, and a refreshing ``token``.

Each contender is a fresh child process, timed from spawn to exit (what a script calling
``$(zephr-desktop token)`` waits for). All children share one environment (isolated XDG
dirs, the fail keyring, bytecode caching on) and one working directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zephr_desktop.sandbox import Sandbox

from .env import Workspace, console_script, has_module
from .fixtures import add_profile, scripted_user, sign_in
from .stats import BenchError, Figure, interleave, samples

CHILD_TIMEOUT = 60.0
FLOOR = "python -c 'import platformdirs, json'"
BARE = "python -c pass"
GOOGLE_FLOOR = "python -c 'import google_auth_oauthlib.flow'"
# What DESIGN.md section 6 says the cached token path must never import.
FORBIDDEN = ("authlib", "requests", "keyring", "PyQt6", "qtpy", "webview", "urllib3", "filelock", "tomli_w")
TOKEN_TARGET = 1.25
TOKEN_BARE_TARGET = 1.6  # with a fresh cached token: at most 1.6 times a bare interpreter's start

# Runs the real ``-m zephr_desktop`` path and records sys.modules at exit (after main() returned).
_PROBE = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
code = sys.argv.pop(1)
if code:
    exec(code)
else:
    runpy.run_module("zephr_desktop", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Child:
    """One contender: a command line, and what its stdout must hold."""

    argv: tuple[str, ...]
    expect: str | None = None


def run_child(child: Child, ws: Workspace, cwd: Path) -> float:
    """Run one child to completion; its wall time in seconds (a failed child breaks the benchmark)."""
    started = time.perf_counter()
    proc = subprocess.run(child.argv, env=ws.env(), cwd=cwd, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 or (child.expect is not None and proc.stdout.strip() != child.expect):
        raise BenchError(
            f"{' '.join(child.argv[:4])} exited {proc.returncode}; stdout {proc.stdout.strip()[:40]!r}, "
            f"stderr: {proc.stderr.strip()[-400:]}"
        )
    return elapsed


def _timer(child: Child, ws: Workspace, cwd: Path) -> Callable[[], float]:
    return lambda: run_child(child, ws, cwd)


def token_children(token: str, profile: str) -> dict[str, Child]:
    """The contenders of figure 1: our two entry points and three floors."""
    py = sys.executable
    children = {"python -m zephr_desktop token": Child((py, "-m", "zephr_desktop", "token", "-p", profile), token)}
    script = console_script()
    if script is not None:
        children["zephr-desktop token (console script)"] = Child((str(script), "token", "-p", profile), token)
    children[BARE] = Child((py, "-c", "pass"))
    children[FLOOR] = Child((py, "-c", "import platformdirs, json"))
    if has_module("google_auth_oauthlib"):
        children[GOOGLE_FLOOR] = Child((py, "-c", "import google_auth_oauthlib.flow"))
    return children


def _token_figures(results: dict[str, list[float]]) -> list[Figure]:
    """Figure 1's rows: each entry point against the design's floor; the module path against the others."""
    ms = 1000.0
    floor = samples(FLOOR, results[FLOOR], ms)
    module = samples("python -m zephr_desktop token", results["python -m zephr_desktop token"], ms)
    rows = [
        Figure(
            "1a",
            "token, cached (python -m) vs bare interpreter",
            "ms",
            module,
            samples(BARE, results[BARE], ms),
            BARE,
            target=TOKEN_BARE_TARGET,
        ),
        Figure(
            "1b", "token, cached (python -m) vs the design's floor", "ms", module, floor, FLOOR, target=TOKEN_TARGET
        ),
    ]
    script_key = "zephr-desktop token (console script)"
    if script_key in results:
        rows.append(
            Figure(
                "1c",
                "token, cached (console script) vs the design's floor",
                "ms",
                samples(script_key, results[script_key], ms),
                floor,
                FLOOR,
                target=TOKEN_TARGET,
            )
        )
    else:
        rows.append(
            Figure(
                "1c",
                "token, cached (console script) vs the design's floor",
                "ms",
                None,
                floor,
                FLOOR,
                target=TOKEN_TARGET,
                skipped="no zephr-desktop console script beside this Python "
                "(run from the .venv that scripts/setup creates)",
            )
        )
    if GOOGLE_FLOOR in results:
        rows.append(
            Figure(
                "1d",
                "token, cached (python -m) vs google-auth-oauthlib's import floor",
                "ms",
                module,
                samples(GOOGLE_FLOOR, results[GOOGLE_FLOOR], ms),
                GOOGLE_FLOOR,
            )
        )
    else:
        rows.append(
            Figure(
                "1d",
                "token, cached (python -m) vs google-auth-oauthlib's import floor",
                "ms",
                module,
                None,
                GOOGLE_FLOOR,
                error="google-auth-oauthlib is not installed (the bench extra)",
            )
        )
    return rows


def _stale(ws: Workspace, profile: str) -> Callable[[], None]:
    """Make a profile's cached token due for refresh again (untimed, before each refreshing run)."""
    path = ws.data_dir / "tokens" / f"{profile}.json"

    def prepare() -> None:
        doc = json.loads(path.read_text())
        now = time.time()
        # Five seconds left of a 50-minute lifetime: inside the refresh margin of min(60 s, a third).
        doc["obtained_at"], doc["expires_at"] = now - 3000.0, now + 5.0
        path.write_text(json.dumps(doc))

    return prepare


def refresh_figure(ws: Workspace, sb: Sandbox, cwd: Path, rounds: int, cached: str) -> Figure:
    """Figure 2: ``token`` that refreshes against the sandbox first, vs ``token`` with a fresh cache."""
    user = scripted_user()
    profile = add_profile(ws, sb, "stale")
    sign_in(ws, profile, user)
    py = sys.executable
    children = {
        "refresh": Child((py, "-m", "zephr_desktop", "token", "-p", "stale")),
        "cached": Child((py, "-m", "zephr_desktop", "token", "-p", cached)),
    }
    before = sb.stats.get("token_refresh_token", 0)
    results = interleave(
        {k: _timer(c, ws, cwd) for k, c in children.items()}, rounds, prepare={"refresh": _stale(ws, "stale")}
    )
    refreshed = sb.stats.get("token_refresh_token", 0) - before
    if refreshed != rounds + 1:  # +1: the warm-up round refreshed too
        raise BenchError(f"expected {rounds + 1} refreshes at the sandbox, saw {refreshed}")
    return Figure(
        "2",
        "token that refreshes first (sandbox) vs token, cached",
        "ms",
        samples("token (refresh)", results["refresh"], 1000.0),
        samples("token (cached)", results["cached"], 1000.0),
        "token, cached (python -m)",
        extra={"refreshes_seen": refreshed},
    )


def _modules(ws: Workspace, cwd: Path, code: str, argv: Sequence[str]) -> tuple[list[str], str]:
    """sys.modules at exit of a probe child (with -X importtime on stderr)."""
    out = ws.root / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _PROBE, str(out), code, *argv],
        env=ws.env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    if proc.returncode != 0:
        raise BenchError(f"the import probe failed: {proc.stderr.strip()[-400:]}")
    return json.loads(out.read_text()), proc.stderr


def _cumulative(importtime: str) -> dict[str, int]:
    """Module -> cumulative import time in microseconds, from -X importtime output."""
    costs: dict[str, int] = {}
    for line in importtime.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
            costs[parts[2].strip()] = int(parts[1].strip())
    return costs


def import_report(ws: Workspace, cwd: Path, profile: str) -> dict[str, object]:
    """What the cached token path imports beyond a bare interpreter, and proof that the heavy packages stay out.

    Both probes run the same code around them (which imports json itself), so only what ``token`` adds shows.
    """
    token_mods, importtime = _modules(ws, cwd, "", ["token", "-p", profile])
    floor_mods, _ = _modules(ws, cwd, "import platformdirs, json", [])
    bare_mods, _ = _modules(ws, cwd, "pass", [])
    tops = {m.split(".")[0] for m in token_mods}
    third_party = sorted(tops - {m.split(".")[0] for m in bare_mods} - set(sys.stdlib_module_names) - {"zephr_desktop"})
    extra = sorted(set(token_mods) - set(bare_mods))
    costs = _cumulative(importtime)
    # Cumulative times nest (a parent includes its children), so these overlap: they name the culprits.
    heavy = sorted(((costs[m], m) for m in extra if m in costs), reverse=True)[:8]
    return {
        "modules": len(token_mods),
        "bare_modules": len(bare_mods),
        "floor_modules": len(floor_mods),
        "beyond_bare": extra,
        "third_party": third_party,
        "forbidden_imported": sorted(t for t in tops if t in FORBIDDEN),
        "largest_beyond_bare_us": [[m, us] for us, m in heavy],
    }


def token_figures(
    ws: Workspace, sb: Sandbox, cwd: Path, rounds: int, refresh_rounds: int
) -> tuple[list[Figure], dict[str, object]]:
    """Figures 1 and 2, plus the import report of the cached path."""
    user = scripted_user()
    profile = add_profile(ws, sb, "cached", default=True)
    token = sign_in(ws, profile, user).access_token
    children = token_children(token, profile.name)
    results = interleave({k: _timer(c, ws, cwd) for k, c in children.items()}, rounds)
    figures = _token_figures(results)
    figures.append(refresh_figure(ws, sb, cwd, refresh_rounds, profile.name))
    return figures, import_report(ws, cwd, profile.name)
