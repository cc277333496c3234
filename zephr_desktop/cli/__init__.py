"""The ``zephr-desktop`` command line (DESIGN.md section 6): ``main`` and its error handling.

stdout carries only data (a token, a URL, JSON); everything for people goes to stderr.
Exit codes: 0 ok, 1 failed (one line on stderr), 2 usage. Modules beyond the standard
library are imported inside the commands that need them, so ``token`` with a fresh
cached token stays at one interpreter start plus platformdirs. The commands live in
``profiles``, ``signin``, ``tokens`` and ``desktop``; ``parser`` ties them to their names.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from ..errors import ZephrError
from .common import _err
from .logs import _setup_logging
from .parser import build_parser

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code."""
    from ..store import take_env_client_secret

    # Out of the environment before anything can start a child (a browser, the web engine).
    env_client_secret = take_env_client_secret()
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = 0
    while flags < len(argv) and argv[flags] in ("-v", "--verbose"):
        flags += 1
    if argv[flags : flags + 1] == ["sandbox"]:
        # Everything after `sandbox` belongs to the sandbox's own parser, options included.
        from ..sandbox import main as sandbox_main

        _setup_logging(flags > 0)
        return _run(lambda: sandbox_main(argv[flags + 1 :]))
    args = build_parser().parse_args(argv)
    args.env_client_secret = env_client_secret
    _setup_logging(args.verbose)
    return _run(lambda: _dispatch(args, stdin or sys.stdin))


def _dispatch(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..fileutil import check_private
    from ..paths import app_paths

    check_private(*app_paths())  # like ssh: nothing runs on files another user could have changed
    return int(args.func(args, stdin))


def _run(command: Callable[[], int]) -> int:
    """Run a command: every failure is one line on stderr and exit 1 (130 for Ctrl-C), never a traceback."""
    try:
        return int(command())
    except ZephrError as exc:
        _err(exc.message)
        return 1
    except OSError as exc:
        # A full disk, a read-only or foreign-owned config/data dir: say which file and why.
        where = f" ({exc.filename})" if exc.filename else ""
        _err(f"A file operation failed{where}: {exc.strerror or exc}. Check the disk and the permissions.")
        return 1
    except KeyboardInterrupt:
        _err("Interrupted.")
        return 130
    except Exception as exc:
        # A bug, or data no check foresaw: the traceback goes to the --verbose log (redacted like
        # every log line), the person gets one line. The exception's text is not shown: it may
        # quote whatever value broke it.
        import traceback

        log.debug("unexpected error:\n%s", "".join(traceback.format_exception(exc)).rstrip())
        _err(
            f"The command failed on something unexpected ({type(exc).__name__}). Run it again with --verbose to "
            "see where, and report it if it keeps happening."
        )
        return 1
