"""Figure 7: what 100 profiles with 100 cached tokens cost against 1, for the cold start and for `token`.

Two workspaces (each its own XDG dirs) point at the same sandbox: one holds the measured
profile alone, the other holds it among 99 more, each with a cached token (copies of a real
one, saved through the store as a sign-in saves them). Both runs use the measured profile
(signed in for real), so the page draws the same token, next to a profile menu of 1 or 100,
and ``token`` prints the same kind of token.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from zephr_desktop.sandbox import Sandbox

from .cli_bench import Child, run_child
from .env import Workspace
from .fixtures import add_profile, sign_in, store_for
from .stats import Figure, interleave, samples

GROWTH_TARGET = 1.10
MANY = 100
PROFILE = "bench"


def workspace(root: Path, sb: Sandbox, profiles: int) -> tuple[Workspace, str]:
    """A workspace with ``profiles`` profiles, each with a cached token; returns it and the measured token."""
    ws = Workspace(root)
    profile = add_profile(ws, sb, PROFILE, default=True)
    token = sign_in(ws, profile)
    store = store_for(ws)
    for n in range(1, profiles):
        # Each saved as a sign-in saves it: bound to its own profile (the same site, token URL and client).
        store.save(add_profile(ws, sb, f"site-{n:03d}"), dataclasses.replace(token))
    return ws, token.access_token


def token_figure(one: Workspace, many: Workspace, token_one: str, token_many: str, rounds: int) -> Figure:
    """Figure 7b: ``token`` with 100 profiles and tokens against 1."""
    import sys

    argv = (sys.executable, "-m", "zephr_desktop", "token", "-p", PROFILE)
    timers = {
        "one": lambda: run_child(Child(argv, token_one), one, one.root),
        "many": lambda: run_child(Child(argv, token_many), many, many.root),
    }
    results = interleave(timers, rounds)
    label = f"token, cached, with {MANY} profiles and tokens vs 1"
    return Figure(
        "7b",
        label,
        "ms",
        samples(f"{MANY} profiles", results["many"], 1000.0),
        samples("1 profile", results["one"], 1000.0),
        "the same with 1 profile",
        target=GROWTH_TARGET,
    )


def start_figure(launcher: Any, one: Workspace, many: Workspace, rounds: int) -> Figure:
    """Figure 7a: the app's cold start with 100 profiles and tokens against 1 (``launcher`` times one start)."""
    runs: dict[str, list[Any]] = {"one": [], "many": []}
    timers = {k: launcher(ws, runs[k]) for k, ws in (("one", one), ("many", many))}
    interleave(timers, rounds)
    one_runs, many_runs = runs["one"][-rounds:], runs["many"][-rounds:]
    label = f"desktop app cold start with {MANY} profiles and tokens vs 1"
    return Figure(
        "7a",
        label,
        "ms",
        samples(f"{MANY} profiles", [x.seconds for x in many_runs], 1000.0),
        samples("1 profile", [x.seconds for x in one_runs], 1000.0),
        "the same with 1 profile",
        target=GROWTH_TARGET,
        extra={
            "cpu_ms": {
                "many": _median([x.cpu_seconds * 1000 for x in many_runs]),
                "one": _median([x.cpu_seconds * 1000 for x in one_runs]),
            }
        },
    )


def _median(values: list[float]) -> float:
    import statistics

    return round(statistics.median(values), 1) if values else 0.0


def failed(error: str) -> list[Figure]:
    """The rows, each saying why it could not be measured."""
    return [
        Figure(
            "7a",
            f"desktop app cold start with {MANY} profiles and tokens vs 1",
            "ms",
            None,
            None,
            "the same with 1 profile",
            target=GROWTH_TARGET,
            error=error,
        ),
        Figure(
            "7b",
            f"token, cached, with {MANY} profiles and tokens vs 1",
            "ms",
            None,
            None,
            "the same with 1 profile",
            target=GROWTH_TARGET,
            error=error,
        ),
    ]
