"""Keyboard habits in the real app, with real key presses (xdotool) and the X clipboard (xclip):
Ctrl+C on the token, Ctrl+Shift+C from anywhere, Escape cancels a sign-in, Ctrl+, opens settings
with the About lines."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import GuiApp, port_is_free, seed_profile, sign_in
from test_gui import report_failure

from zephr_desktop import __version__
from zephr_desktop.sandbox import Sandbox, SandboxSettings

pytestmark = pytest.mark.gui

COPIED = "Copied the token. The clipboard clears in 2 min."


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    server = Sandbox(settings=SandboxSettings(loopback_any_port=True)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gui(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=120) as app:
        yield app
        report_failure(app, request)


def set_clipboard(gui: GuiApp, text: str) -> None:
    """Put something else on the X clipboard (xclip keeps serving it in the background)."""
    subprocess.run(
        ["xclip", "-selection", "clipboard", "-i"], input=text.encode(), env=gui._x_env(), check=True, timeout=10
    )
    gui.wait_for(lambda: gui.clipboard() == text, "the clipboard to hold the placeholder")


def keys(gui: GuiApp, combo: str) -> None:
    """Press a key combination in the main window, as a person does (X key events to the focused window)."""
    gui.xdotool("windowfocus", "--sync", str(gui.main_window()))
    gui.xdotool("key", "--clearmodifiers", combo)


def focused(gui: GuiApp) -> str:
    return str(gui.js("document.activeElement && (document.activeElement.dataset.testid || document.activeElement.id)"))


def test_ctrl_c_on_the_token_copies_the_whole_token_not_the_selection(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    token = sign_in(gui, sb)
    gui.press("access-token")  # focus it with the mouse, as a person would
    gui.wait_for(lambda: focused(gui) == "access-token", "the token to have the focus")
    # A selection of part of the (masked) text: a plain copy would take just that.
    gui.js(
        "(function(){ var r = document.createRange(); r.selectNodeContents("
        f"{gui.sel('access-token')}.querySelector('.prefix'));"
        " var s = getSelection(); s.removeAllRanges(); s.addRange(r); return true; })()"
    )
    assert 0 < len(str(gui.js("getSelection().toString()"))) < len(token)
    set_clipboard(gui, "placeholder")

    keys(gui, "ctrl+c")
    gui.wait_for(lambda: gui.clipboard() == token, "the whole token on the clipboard", timeout=10)
    assert gui.text("status-line") == COPIED


def test_ctrl_shift_c_copies_the_token_from_anywhere(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    token = sign_in(gui, sb)
    gui.press("reveal")
    gui.wait_for(lambda: focused(gui) == "reveal", "the focus on another control")
    set_clipboard(gui, "placeholder")
    keys(gui, "ctrl+shift+c")
    gui.wait_for(lambda: gui.clipboard() == token, "the token on the clipboard", timeout=10)
    assert gui.text("status-line") == COPIED

    # Even from a text field of the settings view.
    keys(gui, "ctrl+comma")
    gui.wait_for(lambda: focused(gui) == "f-site_url", "the settings view's first field")
    set_clipboard(gui, "placeholder")
    keys(gui, "ctrl+shift+c")
    gui.wait_for(lambda: gui.clipboard() == token, "the token on the clipboard", timeout=10)


def test_escape_cancels_the_sign_in_and_frees_the_port(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    gui.press("sign-in")
    listening = gui.wait_js("document.getElementById('listening').textContent")
    port = int(re.search(r":(\d+)/callback", listening).group(1))  # type: ignore[union-attr]
    gui.consent_window()
    keys(gui, "Escape")
    gui.wait_for(lambda: gui.text("status-line") == "Sign-in cancelled.", "the cancelled line")
    gui.wait_for(lambda: port_is_free(port), f"port {port} to be free", timeout=10)
    gui.wait_for(lambda: not gui.find_windows("Sign in to Zephr$"), "the consent window to close")
    assert not gui.js(f"{gui.sel('sign-in')}.disabled")


def test_ctrl_comma_opens_settings_with_the_about_lines(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    assert not gui.js("document.getElementById('settings-card').offsetParent !== null")
    gui.press("sign-in")  # any control of the main window may have the focus
    gui.click("cancel")
    keys(gui, "ctrl+comma")
    gui.wait_for(lambda: gui.js("document.getElementById('settings-card').offsetParent !== null"), "settings")
    about = gui.wait_for(lambda: gui.shown_text(gui.sel("about")), "the About lines")
    assert f"Zephr Desktop {__version__}" in about
    assert str(gui.config_path) in about
    assert str(gui.data_dir) in about
    assert f"a private file, {gui.data_dir / 'secrets.json'}" in about  # no keyring here: the 0600 file
    gui.screenshot("settings-about", gui.main_window())
    keys(gui, "Escape")
    gui.wait_for(lambda: not gui.js("document.getElementById('settings-card').offsetParent !== null"), "closed")
