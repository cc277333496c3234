"""Strict tooling as part of the suite: ruff (lint and format) and mypy must be clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What `ruff format --check` holds to the formatter: every path here must stay formatted.
# Every tree ruff checks is kept formatted too (ruff format).
FORMATTED: tuple[str, ...] = ("zephr_desktop", "tests", "scripts", "bench")
LINTED = [d for d in ("zephr_desktop", "tests", "bench", "scripts") if (ROOT / d).is_dir()]


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_clean() -> None:
    proc = _run("ruff", "check", *LINTED, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean() -> None:
    missing = [p for p in FORMATTED if not (ROOT / p).exists()]
    assert not missing, f"FORMATTED names paths that do not exist: {missing}"
    proc = _run("ruff", "format", "--check", *FORMATTED, timeout=120)
    assert proc.returncode == 0, "run `ruff format` on these files:\n" + proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = _run("mypy", timeout=300)  # what to check and how strictly: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, proc.stdout + proc.stderr
