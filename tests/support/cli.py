"""Run ``zephr-desktop`` commands: in this process (``call``), or as a real child process (``run``, ``start``).

``call`` runs ``cli.main`` here, as click's ``CliRunner`` does: much faster, and what most
contract tests need. A child process (``run``, ``start``/``finish``) is for what only a
process boundary shows: the fast path of ``token``, the exit status the shell sees, what a
command imports, the umask and file modes, and commands that start children of their own
(``login`` opens a browser) or wait while the test talks to them.

Every command runs with ``--verbose`` unless told otherwise (``verbose=False``: what a person sees
by default, and the only way ``token`` takes its fast path), and what it writes goes to the
suite's secrets scan (stdout too, except for ``token``, whose stdout is the token itself).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from support import secrets_scan


@dataclass
class Result:
    """Exit code and both streams of a finished command."""

    code: int
    out: str
    err: str


def _command(args: tuple[str, ...], verbose: bool = True) -> list[str]:
    return [sys.executable, "-m", "zephr_desktop", *(["--verbose"] if verbose else []), *args]


def _collect(args: tuple[str, ...], out: str, err: str) -> None:
    # The sandbox command prints its own client secret in its banner, on purpose: not the app's output.
    if args[:1] == ("sandbox",):
        return
    label = " ".join(args)[:80]
    secrets_scan.collect(f"stderr of `zephr-desktop {label}`", err)
    if args[:1] != ("token",):
        secrets_scan.collect(f"stdout of `zephr-desktop {label}`", out)


# Read once per process (keyring caches the backend it picked): call() cannot honour a change.
_FIXED_AT_START = ("PYTHON_KEYRING_BACKEND",)


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is exactly ``env`` inside, and exactly what it was afterwards (the CLI may remove keys)."""
    changed = [k for k in _FIXED_AT_START if env.get(k) != os.environ.get(k)]
    assert not changed, f"{changed} would not take effect in this process: use run() for a child process"
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _OtherThreads(logging.Handler):
    """While a command runs here, what other threads log goes where it went before, at the levels it had.

    A server in this process (the sandbox, a test's token endpoint) logs on its own threads: that
    is not the command's output, as it would not be with a child process.
    """

    def __init__(self, caller: int, handlers: list[logging.Handler], root_level: int) -> None:
        super().__init__()
        self._caller, self._handlers, self._root_level = caller, handlers, root_level

    def handle(self, record: logging.LogRecord) -> bool:
        if record.thread == self._caller or record.levelno < self._level_before(record.name):
            return False
        for handler in self._handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
        return True

    def _level_before(self, name: str) -> int:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None and logger.parent is not None and logger.level == logging.NOTSET:
            logger = logger.parent
        return self._root_level if logger is None or logger.parent is None else logger.level


@contextlib.contextmanager
def _root_logging() -> Iterator[None]:
    """cli.main sets up the root logger for its process: here, for the calling thread only, and put back afterwards."""
    from zephr_desktop import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    caller = threading.get_ident()
    setup = cli._setup_logging

    def setup_for_the_caller(verbose: bool) -> None:
        setup(verbose)
        for handler in root.handlers:
            handler.addFilter(lambda record: record.thread == caller)
        root.addHandler(_OtherThreads(caller, handlers, level))

    cli._setup_logging = setup_for_the_caller
    try:
        yield
    finally:
        cli._setup_logging = setup
        root.handlers[:] = handlers
        root.setLevel(level)


def _exit_code(code: object, err: io.StringIO) -> int:
    """What a process exiting with ``SystemExit(code)`` returns (argparse exits for usage and --help)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)  # as the interpreter does with a message
    return 1


def call(env: Mapping[str, str], *args: str, stdin: str = "") -> Result:
    """Run ``zephr-desktop --verbose ARGS`` in this process, with ``env`` as the whole environment.

    Standard output and error are captured, with the log of the calling thread only (for commands
    that do their work on it: not ``login``); the environment and the root logger are restored
    afterwards; ``SystemExit`` becomes the exit code a process would have had.
    """
    from zephr_desktop import cli

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), _root_logging(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["--verbose", *args], stdin=io.StringIO(stdin))
        except SystemExit as exc:
            code = _exit_code(exc.code, err)
    _collect(args, out.getvalue(), err.getvalue())
    return Result(code, out.getvalue(), err.getvalue())


def run(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60, verbose: bool = True) -> Result:
    """Run ``python -m zephr_desktop [--verbose] ARGS`` as a child process, to completion."""
    proc = subprocess.run(
        _command(args, verbose),
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    _collect(args, proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``python -m zephr_desktop --verbose ARGS`` with pipes, for commands that wait (``login``)."""
    proc = subprocess.Popen(
        _command(args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
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
