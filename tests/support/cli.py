"""Run ``zephr-desktop`` as a real child process, the way a script or a person would.

Every command runs with ``--verbose``, and what it writes goes to the suite's secrets scan
(stdout too, except for ``token``, whose stdout is the token itself).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from support import secrets_scan


@dataclass
class Result:
    """Exit code and both streams of a finished command."""

    code: int
    out: str
    err: str


def _command(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "zephr_desktop", "--verbose", *args]


def _collect(args: tuple[str, ...], out: str, err: str) -> None:
    # The sandbox command prints its own client secret in its banner, on purpose: not the app's output.
    if args[:1] == ("sandbox",):
        return
    label = " ".join(args)[:80]
    secrets_scan.collect(f"stderr of `zephr-desktop {label}`", err)
    if args[:1] != ("token",):
        secrets_scan.collect(f"stdout of `zephr-desktop {label}`", out)


def run(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60) -> Result:
    """Run ``python -m zephr_desktop --verbose ARGS`` to completion."""
    proc = subprocess.run(
        _command(args), input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
    )
    _collect(args, proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``python -m zephr_desktop --verbose ARGS`` with pipes, for commands that wait (``login``)."""
    proc = subprocess.Popen(
        _command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    proc.zephr_args = args  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> Result:
    """Wait for a started command and collect its output (killed if it overstays)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"command did not finish in {timeout} s; stderr: {err}") from None
    _collect(getattr(proc, "zephr_args", ("?",)), out, err)
    return Result(proc.returncode, out, err)
