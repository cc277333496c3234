#!/usr/bin/env python3
"""Regenerate the README's screenshots (docs/screenshots) from the real app, on purpose.

The GUI tests take the same pictures into their own temp dirs and never touch the
repository; this script runs the same steps through the same harness (tests/gui/harness.py:
a private Xvfb, the app in its own process group, the sandbox in this process) and copies
the two pictures the README shows into docs/screenshots:

    .venv/bin/python scripts/screenshots.py            # or --out DIR to write elsewhere

It needs what the GUI tests need (Xvfb, xclip, xdotool, x11-utils, ImageMagick; `bash
scripts/setup` installs them) and the test extras (`pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "screenshots"
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "gui")]  # the harness and the helpers it imports

import harness  # noqa: E402  (the GUI tests' harness and its helpers in tests/support, found through the path above)

from zephr_desktop.sandbox import Sandbox, SandboxSettings  # noqa: E402


def take(out: Path, timeout: float = 120.0) -> list[Path]:
    """Sign in to a fresh sandbox in the real app and copy main-before/main-after into ``out``."""
    with tempfile.TemporaryDirectory(prefix="zephr-screenshots-") as tmp:
        sb = Sandbox(settings=SandboxSettings(loopback_any_port=True)).start()
        try:
            with harness.GuiApp(Path(tmp) / "gui", timeout=timeout) as gui:
                harness.seed_profile(gui, sb)
                gui.launch()
                gui.wait_for(lambda: gui.text("status-line") == "Not signed in.", "the signed-out main window")
                before = gui.screenshot("main-before", gui.main_window())
                harness.sign_in(gui, sb)
                gui.wait_for(lambda: harness.consent_gone(gui), "the consent window to close itself")
                after = gui.screenshot("main-after", gui.main_window())
                out.mkdir(parents=True, exist_ok=True)
                written = []
                for shot in (before, after):
                    target = out / shot.name
                    shutil.copyfile(shot, target)
                    written.append(target)
                return written
        finally:
            sb.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"where to write the PNGs (default: {OUTPUT})")
    args = parser.parse_args(argv)
    try:
        written = take(args.out)
    except harness.HarnessError as exc:
        print(f"screenshots: the app did not get through the sign-in: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
