"""Run ``zephr-desktop`` as a real child process, the way a script or a person would."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Result:
    """Exit code and both streams of a finished command."""

    code: int
    out: str
    err: str


def run(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60) -> Result:
    """Run ``python -m zephr_desktop ARGS`` to completion."""
    proc = subprocess.run(
        [sys.executable, "-m", "zephr_desktop", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``python -m zephr_desktop ARGS`` with pipes, for commands that wait (``login``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> Result:
    """Wait for a started command and collect its output (killed if it overstays)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"command did not finish in {timeout} s; stderr: {err}") from None
    return Result(proc.returncode, out, err)
