"""Run every figure, print the table, write docs/BENCHMARKS.md (full run) or a given file.

    python -m bench [--quick] [--output FILE.md] [--json FILE.json]

Exit status: 0 when every figure was measured (and, with --quick, is within its guard: 1.5 times
its target, or exactly it for a count), 1 when the benchmark itself broke (a child failed, a flow
did not finish, a figure could not be measured), 2 usage, 3 a quick run with a figure past its guard.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench import callback_bench, cli_bench, growth, gui_bench, soak
from bench.env import REPO, Workspace, commit_info, machine_info, utc_now
from bench.explain import explain
from bench.fixtures import start_sandbox
from bench.report import Report, terminal_table, write
from bench.stats import BenchError, Figure

DEFAULT_OUTPUT = REPO / "docs" / "BENCHMARKS.md"


@dataclass(frozen=True)
class Plan:
    """How many runs each figure gets."""

    token_rounds: int
    refresh_rounds: int
    callback_rounds: int
    start_rounds: int
    growth_rounds: int
    signin_rounds: int
    allow_rounds: int
    soak_cycles: int
    soak_memory_from: int
    settle: float
    gui_budget: float


FULL = Plan(
    token_rounds=40,
    refresh_rounds=20,
    callback_rounds=40,
    start_rounds=15,
    growth_rounds=10,
    signin_rounds=15,
    allow_rounds=15,
    soak_cycles=250,
    soak_memory_from=25,
    settle=1.0,
    gui_budget=900.0,
)
# Enough to exercise every code path and to catch a figure far past its target; never enough to judge a number.
QUICK = Plan(
    token_rounds=5,
    refresh_rounds=3,
    callback_rounds=5,
    start_rounds=3,
    growth_rounds=3,
    signin_rounds=3,
    allow_rounds=3,
    soak_cycles=12,
    soak_memory_from=3,
    settle=0.5,
    gui_budget=240.0,
)


def soak_budget(plan: Plan) -> float:
    """Seconds the soak may take: a refresh every two thirds of a 5-second lifetime, with room to spare."""
    return plan.soak_cycles * 5.0 + 120.0


def measure(plan: Plan, tmp: Path) -> tuple[list[Figure], dict[str, object]]:
    """Every figure, in table order; sections 1-3 raise BenchError when broken, the others report it in their rows."""
    ws = Workspace(tmp / "cli")
    ws.apply_here()
    sb = start_sandbox()
    try:
        figures, imports = cli_bench.token_figures(ws, sb, ws.root, plan.token_rounds, plan.refresh_rounds)
        figures.append(callback_bench.callback_figure(ws, sb, plan.callback_rounds))
        one, token_one = growth.workspace(tmp / "growth-1", sb, 1)
        many, token_many = growth.workspace(tmp / "growth-100", sb, growth.MANY)
        figures.append(growth.token_figure(one, many, token_one, token_many, plan.token_rounds))
        figures += gui_bench.start_figures(
            sb,
            tmp,
            rounds=plan.start_rounds,
            growth_rounds=plan.growth_rounds,
            settle=plan.settle,
            budget=plan.gui_budget,
            growth=(one, many),
        )
        figures += gui_bench.window_figures(
            sb, tmp, allow_rounds=plan.allow_rounds, signin_rounds=plan.signin_rounds, budget=plan.gui_budget
        )
    finally:
        sb.stop()
    figures += soak.soak_figures(
        tmp, cycles=plan.soak_cycles, memory_from=plan.soak_memory_from, budget=soak_budget(plan)
    )
    figures.sort(key=lambda f: (int("".join(c for c in f.key if c.isdigit())), f.key))
    explain(figures, imports)
    return figures, imports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few runs per figure (CI); checks the benchmark works")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE.md",
        help="where to write the markdown report (default: docs/BENCHMARKS.md for a full run, none for --quick)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE.json", help="also write the figures as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    machine, commit, date = machine_info(), commit_info(), utc_now()
    print(
        f"zephr-desktop benchmark ({'quick' if args.quick else 'full'}) on {machine['cores']} cores, "
        f"{machine['python']}",
        file=sys.stderr,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="zephr-bench-") as tmp:
            figures, imports = measure(plan, Path(tmp))
    except BenchError as exc:
        print(f"benchmark broken: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("benchmark broken (see the traceback above)", file=sys.stderr)
        return 1
    mode = "quick (too few runs to judge a number)" if args.quick else "full"
    command = "python -m bench --quick" if args.quick else "python -m bench"
    report = Report(figures, imports, machine, commit, date, mode, command)
    print(terminal_table(report))
    write(report, output, args.json)
    if output is not None:
        print(
            f"wrote {output.resolve().relative_to(REPO) if output.resolve().is_relative_to(REPO) else output}",
            file=sys.stderr,
        )
    if any(f.error for f in figures):
        return 1
    if args.quick:
        past = [f for f in figures if f.within_guard is False and not f.unguarded]
        for fig in past:
            print(
                f"{fig.key}: past its guard ({fig.guard:g}{'x' if fig.target_kind == 'ratio' else ' ' + fig.unit}, "
                f"1.5 times its target {fig.target_text})",
                file=sys.stderr,
            )
        if past:
            return 3
    return 0
