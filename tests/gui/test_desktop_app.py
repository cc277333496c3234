"""The real app as the desktop sees it: its windows' WM_CLASS (which the menu entry names) and icon, via ``xprop``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import GuiApp, HarnessError
from test_gui import report_failure

from zephr_desktop import desktop_entry

pytestmark = pytest.mark.gui

ICON_SIZES = {(n, n) for n in (16, 22, 24, 32, 48, 64, 128, 256, 512)}


@pytest.fixture
def gui(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=90) as app:
        yield app
        report_failure(app, request)


def xprop(gui: GuiApp, window: int, prop: str) -> str:
    if shutil.which("xprop") is None:
        raise HarnessError("xprop is needed (Debian: apt-get install x11-utils)")
    result = subprocess.run(
        ["xprop", "-len", "100000000", "-id", str(window), prop],
        env={**os.environ, "DISPLAY": gui.display or ""},
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.stdout


def wm_class(gui: GuiApp, window: int) -> tuple[str, str]:
    match = re.search(r'WM_CLASS\(STRING\) = "([^"]*)", "([^"]*)"', xprop(gui, window, "WM_CLASS"))
    assert match, "the window has no WM_CLASS"
    return match.group(1), match.group(2)


def icon_sizes(gui: GuiApp, window: int) -> set[tuple[int, int]]:
    return {(int(w), int(h)) for w, h in re.findall(r"Icon \((\d+) x (\d+)\)", xprop(gui, window, "_NET_WM_ICON"))}


def test_windows_carry_the_app_icon_and_the_wm_class_the_menu_entry_names(gui: GuiApp) -> None:
    gui.launch(demo=True)
    main = gui.main_window()
    entry = desktop_entry.render_entry(Path("/usr/bin/zephr-desktop"))
    startup_wm_class = re.search(r"^StartupWMClass=(.*)$", entry, re.M).group(1)  # type: ignore[union-attr]
    assert wm_class(gui, main)[1] == startup_wm_class == "zephr-desktop"
    assert icon_sizes(gui, main) == ICON_SIZES

    gui.press("sign-in")
    consent = gui.consent_window()
    assert wm_class(gui, consent)[1] == startup_wm_class
    assert icon_sizes(gui, consent) == ICON_SIZES
