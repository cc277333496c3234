"""The real app in a real QtWebEngine under Xvfb, driven as a person would (see harness.py).

Each test runs the app in a child process group under its own X server with a hard
timeout; the sandbox runs in the test process, so the test knows which token Zephr issued.
These tests never skip: without Xvfb, xclip, xdotool or ImageMagick they fail.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    JOE,
    GuiApp,
    consent_gone,
    consent_sign_in,
    port_is_free,
    seed_profile,
    sign_in,
    wait_token,
)
from support import evidence

from zephr_desktop.config import load_profiles
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TEST_USERS, Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

pytestmark = pytest.mark.gui

HARD_TIMEOUT = 90.0


# -- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings(loopback_any_port=True)


@pytest.fixture
def sb(sandbox_settings: SandboxSettings) -> Iterator[Sandbox]:
    server = Sandbox(settings=sandbox_settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gui(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GuiApp]:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT) as app:
        yield app
        report_failure(app, request)


def report_failure(app: GuiApp, request: pytest.FixtureRequest) -> None:
    """On a failed test, keep a screenshot of the end state and print the app's log."""
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and app.display:
        try:
            path = app.screenshot(f"FAILED-{request.node.name}")
            print(f"screenshot of the failure: {path}")
        except Exception as exc:
            print(f"no failure screenshot: {exc}")
        print(app.log_tail(8000))


def press_copy(gui: GuiApp, testid: str) -> str:
    """Press a copy button, check it says Copied, and return the X clipboard."""
    gui.press(testid)
    gui.wait_for(lambda: gui.text(testid) == "Copied", f"{testid} to say Copied", timeout=5)
    return gui.clipboard()


# -- tests ---------------------------------------------------------------------------------------------
def test_first_run_form_validates_and_saves_a_profile(gui: GuiApp, sb: Sandbox) -> None:
    gui.launch()
    assert gui.visible("settings") and not gui.visible("sign-in")
    assert gui.js("document.getElementById('settings-card').offsetParent !== null")
    hint = gui.js("document.getElementById('register-hint').textContent")
    assert "Register this redirect URI on your site's Third Party Authentication screen" in hint
    assert "http://127.0.0.1:8765/callback" in hint
    gui.screenshot("first-run", gui.main_window())

    # A page asking for a permission (here the clipboard) must not abort the process.
    gui.js("navigator.clipboard.writeText('x').catch(function () {}); true")
    time.sleep(0.5)
    assert gui.alive()

    gui.type_into("#f-site_url", "ftp://news.example.com", target="main")
    gui.type_into("#f-client_id", DEFAULT_CLIENT_ID, target="main")
    gui.press(selector="#save-profile")
    error = gui.wait_for(lambda: gui.shown_text("document.getElementById('err-site_url')"), "the site URL error")
    assert "ftp://news.example.com" in error and "http" in error
    assert gui.js("document.getElementById('f-site_url').getAttribute('aria-invalid')") == "true"
    gui.screenshot("first-run-invalid", gui.main_window())

    gui.js(f"document.getElementById('f-site_url').value = {json.dumps(sb.url)}; true")
    gui.type_into("#f-client_secret", DEFAULT_CLIENT_SECRET, target="main")
    gui.js("document.getElementById('f-redirect_uri').value = ''; true")
    gui.type_into("#f-redirect_uri", "http://127.0.0.1:0/callback", target="main")
    assert gui.js("document.getElementById('redirect-hint').textContent") == "http://127.0.0.1:0/callback"
    assert press_copy_redirect(gui) == "http://127.0.0.1:0/callback"
    gui.press(selector="#save-profile")
    gui.wait_for(lambda: gui.visible("sign-in"), "the sign-in card")

    profiles = load_profiles(gui.config_path)
    (profile,) = profiles.profiles.values()
    assert profile.site_url == sb.url and profile.client_id == DEFAULT_CLIENT_ID
    assert DEFAULT_CLIENT_SECRET not in gui.config_path.read_text()
    store = TokenStore(directory=gui.data_dir, notice=lambda _m: None)
    assert store.get_client_secret(profile.name) == DEFAULT_CLIENT_SECRET
    # The secret is write-only: the page never gets it back.
    gui.press("settings")
    assert gui.js("document.getElementById('f-client_secret').value") == ""
    gui.wait_js("document.getElementById('f-client_secret').placeholder.startsWith('Stored')", timeout=5)
    assert DEFAULT_CLIENT_SECRET not in str(gui.js("document.documentElement.outerHTML"))

    # Check, before any sign-in: the form as edited (not saved) against the sandbox, one line per finding.
    gui.js(f"document.getElementById('f-token_url').value = {json.dumps(sb.token_url)}; true")
    gui.press("check-profile")
    marks = "Array.from(document.querySelectorAll('#check-result li[data-check]')).map(li => li.className).join(' ')"
    assert gui.wait_js(marks, what="the check's findings") == "ok ok ok ok"
    assert "accepts the client ID and secret" in gui.shown_text("document.getElementById('check-result')")
    gui.screenshot("settings-check", gui.main_window())


def press_copy_redirect(gui: GuiApp) -> str:
    gui.press(selector="#copy-redirect")
    gui.wait_js("document.getElementById('copy-redirect').textContent === 'Copied'", timeout=5)
    return gui.clipboard()


def test_sign_in_shows_the_issued_token_and_copies_it(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    gui.screenshot("main-before", gui.main_window())
    assert gui.text("status-line") == "Not signed in."

    gui.press("sign-in")
    gui.wait_for(lambda: gui.text("status-line") == "Waiting for you to click Allow...", "the waiting line")
    assert gui.visible("cancel") and gui.visible("open-in-browser")
    # The consent window says where it is: origin and scheme, as X shows its title.
    window = gui.consent_window()
    title_re = rf"^127\.0\.0\.1:{sb.port} - http - Sign in to Zephr$"
    gui.wait_for(lambda: re.match(title_re, gui.window_name(window)), "the consent window title")
    # No bridge in the consent window.
    assert gui.js("typeof window.pywebview === 'undefined' && typeof window.qt === 'undefined'", target="consent")
    consent_sign_in(gui)

    token = wait_token(gui)
    assert token == sb.issued[-1]["access_token"]
    gui.wait_for(lambda: consent_gone(gui), "the consent window to close itself")
    assert "masked" in gui.js(f"{gui.sel('access-token')}.className")
    assert re.fullmatch(r"(\d:)?\d\d:\d\d", gui.text("expires-in")), gui.text("expires-in")
    # The countdown ticks four times a second but writes the pill only when its text changes (about once a
    # second): every write is a redraw, and a redraw costs the engine memory it gives back only later.
    writes = gui.js(
        "new Promise((done) => { let n = 0; const o = new MutationObserver((records) => { n += records.length; });"
        f" o.observe({gui.sel('expires-in')},"
        " {childList: true, characterData: true, subtree: true, attributes: true});"
        " setTimeout(() => { o.disconnect(); done(n); }, 2100); })"
    )
    assert 1 <= writes <= 4, f"{writes} writes to the countdown in 2.1 s"
    assert gui.text("user-id") == TEST_USERS[JOE]["user_id"]
    assert "user.account:read" in gui.text("scopes") and "user.profile:read" in gui.text("scopes")
    gui.screenshot("main-after", gui.main_window())

    gui.press("reveal")
    assert "masked" not in gui.js(f"{gui.sel('access-token')}.className")
    assert gui.text("reveal").strip() == "Hide"

    assert press_copy(gui, "copy-token") == token
    assert press_copy(gui, "copy-header") == f"Authorization: Bearer {token}"
    assert press_copy(gui, "copy-curl") == f"curl -H 'Authorization: Bearer {token}' {sb.url}/blaize/profile"
    assert press_copy(gui, "copy-export") == f"export ZEPHR_ACCESS_TOKEN={token}"

    gui.press("test-token")
    result = gui.wait_for(
        lambda: "Calling" not in (text := gui.shown_text(gui.sel("test-result"))) and text, "the test result"
    )
    assert "GET /blaize/account" in result and JOE in result
    assert "GET /blaize/profile" in result and "Blow" in result
    gui.screenshot("token-tested", gui.main_window())

    profile = load_profiles(gui.config_path).profiles["sandbox"]
    gui.press("sign-out")
    gui.wait_for(lambda: not gui.visible("access-token"), "the token panel to go")
    assert "Signed out" in gui.text("status-line")
    assert TokenStore(directory=gui.data_dir, notice=lambda _m: None).load_cached(profile) is None


def test_deny_shows_the_denial(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    gui.press("sign-in")
    consent_sign_in(gui, allow=False)
    error = gui.wait_for(lambda: gui.shown_text(gui.sel("error")), "the error line")
    assert "denied" in error.lower()
    assert "Traceback" not in error
    gui.wait_for(lambda: consent_gone(gui), "the consent window to close itself")
    assert not gui.visible("access-token")
    assert not gui.js(f"{gui.sel('sign-in')}.disabled")
    assert sb.issued == []
    gui.screenshot("denied", gui.main_window())


def test_closing_the_consent_window_cancels_and_frees_the_port(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    gui.press("sign-in")
    listening = gui.wait_js("document.getElementById('listening').textContent")
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/callback", listening).group(1))  # type: ignore[union-attr]
    assert not port_is_free(port)
    gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")
    gui.screenshot("consent-open")

    gui.close_window(gui.consent_window())
    message = gui.wait_for(lambda: "cancelled" in (m := gui.text("status-line")) and m, "the cancelled line")
    assert message == "Sign-in cancelled: the sign-in window was closed."
    assert not gui.visible("error")
    gui.wait_for(lambda: port_is_free(port), f"port {port} to be free again", timeout=10)
    gui.wait_for(lambda: consent_gone(gui), "the consent window to be gone")
    assert not gui.visible("cancel")
    assert not gui.js(f"{gui.sel('sign-in')}.disabled")
    gui.screenshot("cancelled", gui.main_window())


def test_refresh_button_shows_a_new_token(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    first = sign_in(gui, sb)
    gui.press("refresh")
    second = wait_token(gui, other_than=first)
    assert second == sb.issued[-1]["access_token"]
    assert len(sb.issued) == 2
    assert gui.text("status-line") == "Token refreshed."
    gui.screenshot("refreshed", gui.main_window())


@pytest.mark.parametrize("sandbox_settings", [SandboxSettings(loopback_any_port=True, expires_in=4)])
def test_auto_refresh_renews_before_expiry_without_a_click(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    first = sign_in(gui, sb)
    assert gui.js(f"{gui.sel('auto-refresh')}.checked")
    renewed = wait_token(gui, other_than=first, timeout=15)
    assert renewed in [t["access_token"] for t in sb.issued[1:]]
    gui.screenshot("auto-refreshed", gui.main_window())

    # Off: the token runs out and nothing renews it (a refresh already under way may still land first).
    gui.press(selector="label.switch")
    gui.wait_for(lambda: not gui.js(f"{gui.sel('auto-refresh')}.checked"), "auto refresh to be off")
    gui.wait_for(lambda: gui.text("expires-in") == "Expired", "the countdown to reach Expired", timeout=15)
    count = len(sb.issued)
    time.sleep(2.0)
    assert len(sb.issued) == count
    assert gui.text("expires-in") == "Expired"


def test_last_token_comes_back_on_restart_and_profiles_switch(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb, "alpha")
    seed_profile(gui, sb, "beta")
    gui.launch()
    assert gui.visible("profile-select")
    assert gui.js(f"[...{gui.sel('profile-select')}.options].map(o => o.value).join(',')") == "alpha,beta"
    token = sign_in(gui, sb)

    gui.close_window(gui.main_window())
    assert gui.wait_exit() == 0

    gui.launch()
    assert wait_token(gui) == token
    assert gui.js(f"{gui.sel('profile-select')}.value") == "alpha"

    select = f"{gui.sel('profile-select')}"
    gui.js(f"{select}.value = 'beta'; {select}.dispatchEvent(new Event('change')); true")
    gui.wait_for(lambda: not gui.visible("access-token") and gui.visible("sign-in"), "beta's sign-in card")
    gui.screenshot("profile-beta", gui.main_window())
    gui.js(f"{select}.value = 'alpha'; {select}.dispatchEvent(new Event('change')); true")
    assert wait_token(gui) == token


def consent_page_kind(gui: GuiApp) -> str:
    """'login' or 'consent', once the consent window has loaded one of them."""
    script = (
        "document.readyState !== 'complete' ? '' : document.querySelector('#email') ? 'login'"
        " : document.querySelector('#allow') ? 'consent' : ''"
    )
    return str(gui.wait_js(script, target="consent", what="the login or consent page"))


def test_consent_cookies_are_private_unless_the_profile_keeps_them(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb, "fresh")
    seed_profile(gui, sb, "kept", keep_site_session=True)
    gui.launch("fresh")
    sign_in(gui, sb)
    gui.press("sign-in")
    assert consent_page_kind(gui) == "login"  # a new off-the-record profile: no session from the last time
    gui.click("cancel")
    gui.wait_for(lambda: consent_gone(gui), "the consent window to close")

    select = gui.sel("profile-select")
    gui.js(f"{select}.value = 'kept'; {select}.dispatchEvent(new Event('change')); true")
    gui.wait_for(lambda: gui.visible("sign-in") and not gui.visible("access-token"), "kept's sign-in card")
    first = sign_in(gui, sb)
    gui.press("sign-in")
    assert consent_page_kind(gui) == "consent"  # the site session survived in the profile's own storage
    gui.press(selector="#allow", target="consent")
    assert wait_token(gui, other_than=first) == sb.issued[-1]["access_token"]
    assert (gui.data_dir / "site-sessions" / "kept").is_dir()
    assert not (gui.data_dir / "site-sessions" / "fresh").exists()


def test_open_in_browser_instead_finishes_in_the_system_browser(tmp_path: Path, sb: Sandbox) -> None:
    from support.user import ScriptedUser

    opened = tmp_path / "opened-url.txt"
    recorder = "import sys; open(sys.argv[2], 'w').write(sys.argv[1])"
    browser = f"{sys.executable} -c {shlex.quote(recorder)} %s {shlex.quote(str(opened))}"
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env={"BROWSER": browser}) as gui:
        seed_profile(gui, sb)
        gui.launch()
        gui.press("sign-in")
        consent_page_kind(gui)
        gui.click("open-in-browser")
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close")
        status = "Waiting for you to click Allow in your browser..."
        gui.wait_for(lambda: gui.text("status-line") == status, "the browser waiting line")
        assert not gui.visible("open-in-browser") and gui.visible("cancel")
        url = gui.wait_for(lambda: opened.exists() and opened.read_text(), "the browser to be opened")
        assert url.startswith(f"{sb.url}/zephr/oauth2?")
        ScriptedUser().approve(url)
        assert wait_token(gui) == sb.issued[-1]["access_token"]


def test_demo_mode_runs_its_own_sandbox(gui: GuiApp) -> None:
    gui.launch(demo=True)
    assert gui.js("!document.getElementById('demo-badge').hidden")
    assert JOE in gui.js("document.getElementById('demo-hint').textContent")
    gui.press("sign-in")
    consent_sign_in(gui)
    wait_token(gui)  # stored in the demo's own temp dir (test_desktop_app.py checks it and the user's files)
    gui.screenshot("demo", gui.main_window())

    gui.close_window(gui.main_window())
    assert gui.wait_exit() == 0
    assert "demo" not in load_profiles(gui.config_path).profiles
    assert not (gui.data_dir / "tokens" / "demo.json").exists()


def test_closing_the_main_window_mid_sign_in_quits_and_frees_the_port(gui: GuiApp, sb: Sandbox) -> None:
    seed_profile(gui, sb)
    gui.launch()
    gui.press("sign-in")
    listening = gui.wait_js("document.getElementById('listening').textContent")
    port = int(re.search(r":(\d+)/callback", listening).group(1))  # type: ignore[union-attr]
    consent_page_kind(gui)
    gui.close_window(gui.main_window())
    assert gui.wait_exit() == 0
    assert port_is_free(port)


@pytest.mark.reliability("nothing-for-tests")
def test_nothing_for_tests_ships_in_the_app(tmp_path: Path) -> None:
    # The app once had a test-only control channel behind this variable: it deleted the file the
    # variable named, put a socket there that ran scripts in the pages, and evaluated code.
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env={"ZEPHR_DESKTOP_TEST_CONTROL": str(victim)}) as gui:
        gui.launch()
        time.sleep(1.0)
        assert victim.is_file() and victim.read_text() == "keep me"
        assert gui.alive()
        evidence.record(
            variable="ZEPHR_DESKTOP_TEST_CONTROL",
            victim_intact=victim.read_text() == "keep me",
            control_socket=victim.is_socket(),
            alive=gui.alive(),
        )
