"""The table on the terminal, docs/BENCHMARKS.md, and the JSON the test reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import Figure

COLUMNS = (
    "#",
    "figure",
    "n",
    "min",
    "median",
    "peer",
    "peer min",
    "peer median",
    "ratio",
    "ratio (min)",
    "target",
    "met",
)


@dataclass
class Report:
    """One run: its figures, the token path's imports, and where and when it ran."""

    figures: list[Figure]
    imports: dict[str, Any]
    machine: dict[str, str]
    commit: str
    date: str
    mode: str
    command: str


def fmt(value: float | None, unit: str) -> str:
    """A value with its unit, to a precision that means something at that size."""
    if value is None:
        return "-"
    if not unit:  # a count
        return f"{value:g}"
    digits = 2 if abs(value) < 10 else 1
    return f"{value:.{digits}f} {unit}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(fig: Figure) -> str:
    if fig.error:
        return "NOT MEASURED"
    if fig.skipped:
        return "skipped"
    return {None: "-", True: "yes", False: "NO"}[fig.met]


def row(fig: Figure) -> list[str]:
    """One figure as table cells."""
    ours, peer = fig.ours, fig.peer
    has_ours = ours is not None and bool(ours.values)
    has_peer = peer is not None and bool(peer.values)
    return [
        fig.key,
        fig.label,
        str(ours.n) if ours is not None and has_ours else "-",
        fmt(ours.min, fig.unit) if ours is not None and has_ours else "-",
        fmt(ours.median, fig.unit) if ours is not None and has_ours else "-",
        fig.peer_label,
        fmt(peer.min, fig.unit) if peer is not None and has_peer else "-",
        fmt(peer.median, fig.unit) if peer is not None and has_peer else "-",
        _ratio(fig.ratio),
        _ratio(fig.ratio_min),
        fig.target_text,
        _met(fig),
    ]


def terminal_table(report: Report) -> str:
    """The table as aligned text, with the gaps and errors under it."""
    rows = [list(COLUMNS), *(row(f) for f in report.figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for fig in report.figures:
        if fig.error or fig.skipped:
            lines.append(f"{fig.key}: {fig.error or fig.skipped}")
        elif fig.gap is not None:
            lines.append(f"{fig.key}: target missed by {fmt(fig.gap, fig.unit)} at the median")
    return "\n".join(lines)


def _md_table(report: Report) -> list[str]:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for fig in report.figures:
        cells = [c.replace("|", "\\|") for c in row(fig)]
        cells[5] = f"`{cells[5]}`" if cells[5].startswith("python") else cells[5]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _md_gaps(report: Report) -> list[str]:
    out = ["", "## Targets missed: the gap and its cause", ""]
    missed = [f for f in report.figures if f.gap is not None or f.error]
    if not missed:
        return [*out, "None: every target with a measurement is met.", ""]
    for fig in missed:
        out.append(f"### {fig.key}. {fig.label}")
        out.append("")
        if fig.error:
            out += [f"Not measured: {fig.error}", ""]
            continue
        assert fig.ours is not None and fig.gap is not None
        over = f"{fig.ratio:.2f}x against {fig.target_text}" if fig.target_kind == "ratio" else fig.target_text
        out += [
            f"Gap: median {fmt(fig.ours.median, fig.unit)} ({over}), {fmt(fig.gap, fig.unit)} over the line.",
            "",
            f"Cause: {fig.cause or 'not analysed.'}",
            "",
        ]
    return out


def _md_imports(imports: dict[str, Any]) -> list[str]:
    if not imports:
        return []
    forbidden = imports.get("forbidden_imported") or []
    third = ", ".join(imports.get("third_party") or []) or "none"
    largest = ", ".join(f"`{m}` {us / 1000:.1f} ms" for m, us in imports.get("largest_beyond_bare_us", []))
    beyond = ", ".join(f"`{m}`" for m in imports.get("beyond_bare") or []) or "none"
    return [
        "",
        "## What `token` imports with a fresh cached token",
        "",
        "From `sys.modules` at exit of the real `python -m zephr_desktop token` path (and `-X importtime` "
        "in the same run), against the same probe running `pass`:",
        "",
        f"- Authlib, requests, urllib3, keyring, filelock, tomli-w, PyQt6, qtpy, pywebview: "
        f"{'none imported' if not forbidden else 'IMPORTED: ' + ', '.join(forbidden)}.",
        f"- Packages from outside the standard library: {third}.",
        f"- Modules: {imports.get('modules')} in all; {imports.get('bare_modules')} for a bare interpreter "
        f"({imports.get('floor_modules')} for the design's floor `import platformdirs, json`); beyond the bare "
        f"interpreter: {beyond}.",
        f"- Largest of those (cumulative; they nest): {largest or 'none measurable'}.",
        "",
    ]


def _md_guards(report: Report) -> list[str]:
    unguarded = [f for f in report.figures if f.unguarded]
    out = [
        "",
        "## The quick mode's guard",
        "",
        "`python -m bench --quick` (run by the test suite, tests/test_bench.py) measures every row with a few "
        "rounds and fails when a figure is past its guard: 1.5 times its target, checked on the lower of the "
        "median and the best run (for a ratio, of the ratio of the medians and the ratio of the mins), since "
        "noise on a shared machine inflates some runs of a few and a regression inflates the best run too; or "
        "the target itself for a count (expired tokens shown, refreshes per cycle). Its soak runs 12 cycles "
        "and compares memory from cycle 3.",
    ]
    for fig in unguarded:
        out += ["", f"Row {fig.key} is only checked for being measured: {fig.unguarded}."]
    return [*out, ""]


def _md_methods(report: Report) -> list[str]:
    out = ["", "## How each figure is measured", ""]
    seen: set[str] = set()
    for fig in report.figures:
        group = fig.key[0]
        if fig.method and group not in seen:
            seen.add(group)
            out += [f"- **{group}.** {fig.method}"]
    details = [f"- **{f.key}.** {f.detail}" for f in report.figures if f.detail]
    if details:
        out += ["", "## Details from this run", "", *details]
    return [*out, ""]


def markdown(report: Report) -> str:
    """docs/BENCHMARKS.md."""
    machine = report.machine
    lines = [
        "# Benchmarks",
        "",
        "Generated by the benchmark (`python -m bench`); do not edit by hand. One run on one machine: each "
        "figure is a min and a median over interleaved runs, beside the peer's figure from the same run and "
        "the ratio of the medians (and of the mins). An absolute time means something only next to its peer.",
        "",
        f"- Date: {report.date}",
        f"- Commit: {report.commit}",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), {machine['os']}, {machine['python']} "
        f"({machine['environment']}), load average at start {machine['load average at start']}",
        f"- Versions: {machine['versions']}",
        f"- Mode: {report.mode}; command: `{report.command}`",
        "",
        *_md_table(report),
        *_md_gaps(report),
        *_md_imports(report.imports),
        *_md_guards(report),
        *_md_methods(report),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write(report: Report, markdown_path: Path | None, json_path: Path | None) -> None:
    """Write the markdown and/or the JSON report."""
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "mode": report.mode,
            "date": report.date,
            "commit": report.commit,
            "machine": report.machine,
            "imports": report.imports,
            "figures": [f.to_json() for f in report.figures],
        }
        json_path.write_text(json.dumps(doc, indent=1))
