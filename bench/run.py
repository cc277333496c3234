"""Run every figure, print the table, write docs/BENCHMARKS.md (full run) or a given file.

    python -m bench [--quick] [--output FILE.md] [--json FILE.json]

Exit status: 0 when every figure was measured (whatever the numbers), 1 when the benchmark
itself broke (a child failed, a flow did not finish, a figure could not be measured), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench import callback_bench, cli_bench, gui_bench
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
    allow_rounds: int
    settle: float
    gui_budget: float


FULL = Plan(token_rounds=40, refresh_rounds=20, callback_rounds=40, start_rounds=15, allow_rounds=15, settle=1.0,
            gui_budget=600.0)
# Enough to exercise every code path and catch a broken benchmark; never enough to judge a number.
QUICK = Plan(token_rounds=4, refresh_rounds=3, callback_rounds=4, start_rounds=2, allow_rounds=2, settle=0.5,
             gui_budget=150.0)


def measure(plan: Plan, tmp: Path) -> tuple[list[Figure], dict[str, object]]:
    """Every figure, in order; sections 1-3 raise BenchError when broken, the GUI section reports it."""
    ws = Workspace(tmp / "cli")
    ws.apply_here()
    sb = start_sandbox()
    try:
        figures, imports = cli_bench.token_figures(ws, sb, ws.root, plan.token_rounds, plan.refresh_rounds)
        figures.append(callback_bench.callback_figure(ws, sb, plan.callback_rounds))
        figures += gui_bench.gui_figures(sb, tmp, rounds=plan.start_rounds, allow_rounds=plan.allow_rounds,
                                         settle=plan.settle, budget=plan.gui_budget)
    finally:
        sb.stop()
    explain(figures, imports)
    return figures, imports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few runs per figure (CI); checks the benchmark works")
    parser.add_argument("--output", type=Path, metavar="FILE.md",
                        help="where to write the markdown report (default: docs/BENCHMARKS.md for a full run, "
                        "none for --quick)")
    parser.add_argument("--json", type=Path, metavar="FILE.json", help="also write the figures as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    machine, commit, date = machine_info(), commit_info(), utc_now()
    print(f"zephr-desktop benchmark ({'quick' if args.quick else 'full'}) on {machine['cores']} cores, "
          f"{machine['python']}", file=sys.stderr)
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
        print(f"wrote {output.resolve().relative_to(REPO) if output.resolve().is_relative_to(REPO) else output}",
              file=sys.stderr)
    return 1 if any(f.error for f in figures) else 0
