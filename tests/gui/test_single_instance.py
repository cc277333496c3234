"""One app at a time: a second launch brings the running window to the front (on the profile it asks for)
and exits; a killed app leaves nothing in the way; the CLI's ``login`` names the app that holds its port.

X without a window manager (as here) keeps its stacking order and focus as the programs set them:
``xwininfo -root -children`` lists the top-level windows from the top down, and ``xdotool
getwindowfocus`` names the window with the keyboard focus.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO, GuiApp, HarnessError, _kill_group, free_port, port_is_free, seed_profile
from test_gui import report_failure

from zephr_desktop.config import save_profile
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

pytestmark = pytest.mark.gui

MAIN_TITLE = "^Zephr Desktop$"


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


def x(gui: GuiApp, *args: str) -> str:
    return subprocess.run(args, env=gui._x_env(), capture_output=True, text=True, timeout=10).stdout.strip()


def stacking(gui: GuiApp) -> list[int]:
    """Top-level windows from the top of the stack down."""
    listing = x(gui, "xwininfo", "-root", "-children")
    return [int(w, 16) for w in re.findall(r"^\s+(0x[0-9a-f]+) ", listing, re.M)]


def cover(gui: GuiApp) -> tuple[subprocess.Popen[bytes], int]:
    """Another program's window over the whole screen, as when the app is behind other windows."""
    proc = subprocess.Popen(
        ["xmessage", "-geometry", "1280x800+0+0", "another program"],
        env=gui._x_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    window = gui.wait_for(lambda: gui.find_windows("^xmessage$")[:1], "the covering window")[0]
    return proc, int(window)


def shown_profile(gui: GuiApp) -> str:
    return str(gui.js(f"{gui.sel('profile-select')}.value"))


def test_a_second_launch_brings_the_running_window_forward_on_its_profile(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb, "alpha")
    seed_profile(gui, sb, "other")
    gui.launch("alpha")
    main = gui.main_window()
    assert shown_profile(gui) == "alpha"
    blocker, covering = cover(gui)
    try:
        assert stacking(gui).index(covering) < stacking(gui).index(main)
        assert x(gui, "xdotool", "getwindowfocus") != str(main)

        started = time.monotonic()
        second = gui.launch_again("other")
        took = time.monotonic() - started
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr and "'other'" in second.stderr
        assert took < 10, f"the second launch took {took:.1f} s to hand over"

        assert gui.find_windows(MAIN_TITLE) == [main]  # still one main window
        gui.wait_for(lambda: shown_profile(gui) == "other", "the running window to show profile 'other'")
        gui.wait_for(lambda: stacking(gui).index(main) < stacking(gui).index(covering), "the window on top")
        gui.wait_for(lambda: x(gui, "xdotool", "getwindowfocus") == str(main), "the window to have the focus")
        gui.screenshot("second-launch-raised")

        # Without --profile it only comes forward; an unknown profile is said, and nothing switches.
        again = gui.launch_again()
        assert again.returncode == 0 and "already running" in again.stderr
        unknown = gui.launch_again("nosuch")
        assert unknown.returncode == 1
        assert "nosuch" in unknown.stderr and "Traceback" not in unknown.stderr
        assert shown_profile(gui) == "other"
        assert gui.find_windows(MAIN_TITLE) == [main]
    finally:
        _kill_group(blocker)  # type: ignore[arg-type]


def test_after_the_app_was_killed_it_starts_normally(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    sockets = list((gui.runtime_dir / "zephr-desktop").glob("*.sock"))
    assert len(sockets) == 1
    assert gui.app is not None
    os.kill(gui.app.pid, signal.SIGKILL)
    gui.app.wait(10)
    assert sockets[0].exists()  # left behind by the killed app

    gui.launch()  # a normal start, not a hand-over to the dead app
    assert gui.alive() and len(gui.find_windows(MAIN_TITLE)) == 1
    second = gui.launch_again()
    assert second.returncode == 0 and "already running" in second.stderr


def test_a_demo_is_an_app_of_its_own(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    demo = subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop", "--demo"],
        env=gui.env(),
        cwd=str(gui.tmp),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        gui.wait_for(lambda: len(gui.find_windows(MAIN_TITLE)) == 2, "the demo's own window", timeout=40)
        assert demo.poll() is None
        # The user's app is still the one a launch hands over to.
        second = gui.launch_again()
        assert second.returncode == 0 and "already running" in second.stderr
        assert len(gui.find_windows(MAIN_TITLE)) == 2
    finally:
        _kill_group(demo)  # type: ignore[arg-type]
        if demo.stderr is not None:
            demo.stderr.close()


def test_cli_login_says_the_app_holds_the_port(gui: GuiApp, sb: Sandbox) -> None:
    port = free_port()
    profile = Profile.create(
        name="fixed",
        site_url=sb.url,
        token_url=sb.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri=f"http://127.0.0.1:{port}/callback",
        scopes=["user.account:read"],
    )
    save_profile(profile, path=gui.config_path)
    TokenStore(directory=gui.data_dir, notice=lambda _m: None).set_client_secret("fixed", DEFAULT_CLIENT_SECRET)
    gui.launch()
    gui.press("sign-in")
    gui.wait_js(f"document.getElementById('listening').textContent.includes(':{port}/')")
    assert not port_is_free(port)

    env = {**gui.env(), "PYTHONPATH": str(REPO)}
    cli = subprocess.run(
        [sys.executable, "-m", "zephr_desktop", "login", "--no-browser", "--profile", "fixed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert cli.returncode == 1
    assert cli.stdout == ""
    assert cli.stderr.strip() == (
        f"zephr-desktop: The desktop app is waiting for a sign-in on 127.0.0.1:{port}; "
        "finish or cancel it there, then try again."
    )

    # Once the app's sign-in is cancelled, the port is the CLI's.
    gui.click("cancel")
    gui.wait_for(lambda: port_is_free(port), f"port {port} to be free", timeout=10)
    login = subprocess.Popen(
        [sys.executable, "-m", "zephr_desktop", "login", "--no-browser", "--profile", "fixed"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert login.stdout is not None
        url = login.stdout.readline().strip()
        assert url.startswith(f"{sb.url}/zephr/oauth2?"), url
    finally:
        login.kill()
        _out, err = login.communicate(timeout=10)
    if "Traceback" in err:
        raise HarnessError(err)
