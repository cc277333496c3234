"""Strict tooling as part of the suite: ruff and mypy must be clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    targets = [d for d in ("zephr_desktop", "tests", "bench") if (ROOT / d).is_dir()]
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", *targets],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "zephr_desktop"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
