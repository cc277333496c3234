"""The commands beyond the terminal: ``gui``, ``desktop-entry`` and ``sandbox``.

``gui`` (the default command) opens the desktop app, ``desktop-entry`` adds it to the desktop's
menu with its icons or removes it, and ``sandbox`` runs the built-in Zephr sandbox in the foreground.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


def cmd_sandbox(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..sandbox import main as sandbox_main

    return int(sandbox_main(args.sandbox_args))


def cmd_desktop_entry(args: argparse.Namespace, stdin: TextIO) -> int:
    from .. import desktop_entry

    if args.action == "install":
        written = desktop_entry.install()
        print(
            f"Added Zephr Desktop to the app menu: {written[-1]} (and {len(written) - 1} icon files).", file=sys.stderr
        )
        return 0
    removed = desktop_entry.remove()
    print(
        f"Removed the menu entry and icons ({len(removed)} files)."
        if removed
        else "There was no menu entry to remove.",
        file=sys.stderr,
    )
    return 0


def cmd_gui(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..gui import run

    return int(run(getattr(args, "profile", None), demo=bool(args.demo), client_secret=args.env_client_secret))
