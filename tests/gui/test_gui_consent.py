"""The consent window with real sites: a redirect URI that is not on this computer, popups, the browser.

Each test runs the real app under Xvfb (see harness.py) against the sandbox, clicking with
the real mouse. The third party named in a redirect URI is a local https server that records
every request it gets; the app's web engine reaches ``thirdparty.invalid`` there (a host
mapping given to the engine, with certificate errors ignored), so a request that got through
would show up in its record.
"""

from __future__ import annotations

import http.server
import json
import shlex
import ssl
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from harness import GuiApp, consent_gone, consent_sign_in, seed_profile, wait_token
from support.user import ScriptedUser

from zephr_desktop.config import load_profiles, save_profile
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox
from zephr_desktop.sandbox.model import DEFAULT_CLIENT
from zephr_desktop.store import TokenStore

pytestmark = pytest.mark.gui

HARD_TIMEOUT = 120.0
THIRD_PARTY = "https://thirdparty.invalid/auth/callback"


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The suite's sandbox (conftest.py), the third party's redirect URI registered for its client."""
    sandbox.register_client(replace(DEFAULT_CLIENT, redirect_uris=(*DEFAULT_CLIENT.redirect_uris, THIRD_PARTY)))
    return sandbox


class ThirdParty:
    """The site named in the redirect URI: an https server on loopback that records every request."""

    def __init__(self, tmp: Path) -> None:
        from zephr_desktop.sandbox.tls import write_self_signed

        self.requests: list[str] = []
        record = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                record.append(self.path)
                body = b"<!doctype html><title>Third party</title><p id=third>the third party's page</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *_args: object) -> None:
                pass

        cert, key = write_self_signed(tmp)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def engine_env(self) -> dict[str, str]:
        """What makes the app's web engine reach thirdparty.invalid here (as DNS and a CA would)."""
        rules = f'"--host-resolver-rules=MAP thirdparty.invalid 127.0.0.1:{self.port}"'
        return {"QTWEBENGINE_CHROMIUM_FLAGS": f"{rules} --ignore-certificate-errors"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def third(tmp_path: Path) -> Iterator[ThirdParty]:
    (tmp_path / "tls").mkdir()
    server = ThirdParty(tmp_path / "tls")
    try:
        yield server
    finally:
        server.close()


class Bouncer:
    """A plain http server on loopback that answers ``/bounce?to=URL`` with a 302 to URL."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = parse_qs(urlsplit(self.path).query).get("to", ["/"])[0]
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, url: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bounce?to={quote(url, safe='')}"


@pytest.fixture
def bouncer() -> Iterator[Bouncer]:
    server = Bouncer()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def seed_elsewhere(gui: GuiApp, sb: Sandbox) -> Profile:
    """A profile whose redirect URI is the third party's, as the site registered it."""
    profile = Profile.create(name="elsewhere", site_url=sb.url, token_url=sb.token_url, client_id=DEFAULT_CLIENT_ID,
                             redirect_uri=THIRD_PARTY)  # fmt: skip
    save_profile(profile, path=gui.config_path)
    TokenStore(directory=gui.data_dir, notice=lambda _m: None).set_client_secret("elsewhere", DEFAULT_CLIENT_SECRET)
    return profile


def login_page(gui: GuiApp) -> None:
    gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#email')", target="consent")


def sign_in_to_consent_page(gui: GuiApp) -> None:
    """Type the test user's credentials in the consent window and sign in, up to the Allow button."""
    from harness import JOE, PASSWORD

    login_page(gui)
    gui.type_into("#email", JOE)
    gui.type_into("#password", PASSWORD)
    gui.press(selector="#sign-in", target="consent")
    gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#allow')", target="consent")


def authorize_state(gui: GuiApp) -> str:
    """The state of the sign-in the consent window is on (from the login page's next=/zephr/oauth2?...)."""
    query = parse_qs(urlsplit(gui.page("consent")["url"]).query)
    inner = query["next"][0] if "next" in query else gui.page("consent")["url"]
    return parse_qs(urlsplit(inner).query)["state"][0]


# -- a redirect URI that is not on this computer ------------------------------------------------------------
def test_the_window_catches_the_redirect_and_the_third_party_gets_nothing(
    tmp_path: Path, sb: Sandbox, third: ThirdParty
) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env=third.engine_env) as gui:
        seed_elsewhere(gui, sb)
        gui.launch()
        gui.press("sign-in")
        listening = gui.wait_js("document.getElementById('listening').textContent")
        assert listening == f"The Zephr window catches the redirect to {THIRD_PARTY} before it is sent"
        assert not gui.visible("open-in-browser")  # the browser would take the code to the third party
        login_page(gui)
        assert gui.js("document.getElementById('popup-sign-in') !== null", "consent")
        # The control: from this window, the third party's server is reachable (so it would see a leak).
        gui.js("location.href = 'https://thirdparty.invalid/elsewhere'; true", "consent")
        gui.wait_for(lambda: "/elsewhere" in third.requests, "the third party's page to be requested")
        gui.js("history.back(); true", "consent")
        consent_sign_in(gui)  # real keys and clicks: sign in, then Allow
        token = wait_token(gui)
        assert token == sb.issued[-1]["access_token"] and len(sb.issued) == 1
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close with the sign-in")
        assert sb.token_requests[-1]["keys"] == ["code", "code_verifier", "grant_type", "redirect_uri"]
        assert not [path for path in third.requests if path.startswith("/auth/")], third.requests


def test_a_server_302_is_caught_and_a_forged_state_refused(
    tmp_path: Path, sb: Sandbox, third: ThirdParty, bouncer: Bouncer
) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env=third.engine_env) as gui:
        seed_elsewhere(gui, sb)
        gui.launch()
        # A redirect with another state (a code from elsewhere, forced on the window) is refused.
        gui.press("sign-in")
        login_page(gui)
        forged = f"{THIRD_PARTY}?code=attacker0code0000000000000&state=forged"
        gui.js(f"location.href = {json.dumps(bouncer.to(forged))}; true", "consent")
        shown = "document.body ? document.body.innerText : ''"
        refused = gui.wait_js(f"({shown}).includes('does not belong to this sign-in') && {shown}", target="consent")
        assert "Not the sign-in in progress" in refused
        assert gui.js("document.title", "consent").startswith("Not the sign-in in progress")
        assert gui.visible("cancel") and gui.js("!document.getElementById('waiting').hidden")  # still waiting
        gui.click("cancel")
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close")

        # The real code, handed to the window by a server's 302, is caught and signs in.
        gui.press("sign-in")
        sign_in_to_consent_page(gui)
        grant = (
            "(async () => { const req = JSON.parse(document.getElementById('grant-request').textContent);"
            " const r = await fetch('/zephr/oauth2/grant', {method: 'POST', credentials: 'same-origin',"
            " headers: {'Content-Type': 'application/json'}, body: JSON.stringify(Object.assign({}, req,"
            " {allow: true}))}); return await r.json(); })()"
        )
        answer = gui.js(grant, "consent")
        final = f"{THIRD_PARTY}?code={answer['code']}&state={quote(answer['state'], safe='')}"
        gui.js(f"location.href = {json.dumps(bouncer.to(final))}; true", "consent")
        assert wait_token(gui) == sb.issued[-1]["access_token"] and len(sb.issued) == 1
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close with the sign-in")
        assert third.requests == []


def test_an_error_redirect_from_the_authorize_endpoint_ends_the_sign_in(
    tmp_path: Path, sb: Sandbox, third: ThirdParty
) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env=third.engine_env) as gui:
        seed_elsewhere(gui, sb)
        gui.launch()
        gui.press("sign-in")
        login_page(gui)
        state = authorize_state(gui)
        # The sandbox answers an unknown scope with a 302 to the redirect URI carrying the error and state.
        bad = (f"{sb.url}/zephr/oauth2?client_id={DEFAULT_CLIENT_ID}&response_type=code&scope=no.such%3Ascope"
               f"&redirect_uri={quote(THIRD_PARTY, safe='')}&state={quote(state, safe='')}")  # fmt: skip
        gui.js(f"location.href = {json.dumps(bad)}; true", "consent")
        error = gui.wait_for(lambda: gui.shown_text(gui.sel("error")), "the sign-in's error")
        assert "invalid_scope" in error
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close")
        assert third.requests == [] and sb.issued == []


def test_the_settings_form_says_how_the_redirect_will_be_received(tmp_path: Path, sb: Sandbox) -> None:
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT) as gui:
        gui.launch()
        how = "document.getElementById('redirect-how').textContent"
        assert gui.js(how) == "The app listens for the redirect on this computer."
        gui.type_into("#f-site_url", sb.url, target="main")
        gui.type_into("#f-client_id", DEFAULT_CLIENT_ID, target="main")
        gui.js("document.getElementById('f-redirect_uri').value = ''; true")
        gui.type_into("#f-redirect_uri", THIRD_PARTY, target="main")
        said = gui.js(how)
        assert said.startswith("The app's window catches the redirect to this address before it is sent")
        assert "paste the final URL" in said
        gui.press(selector="#save-profile")
        gui.wait_for(lambda: gui.visible("sign-in"), "the sign-in card")
        notice = gui.text("status-line")
        assert f"catches the redirect to {THIRD_PARTY} before it is sent" in notice, notice
        (profile,) = load_profiles(gui.config_path).profiles.values()
        assert profile.redirect_uri == THIRD_PARTY


# -- popups ------------------------------------------------------------------------------------------------
def test_sign_in_through_a_popup(tmp_path: Path, sb: Sandbox) -> None:
    from harness import JOE, PASSWORD

    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT) as gui:
        seed_profile(gui, sb)
        gui.launch()
        gui.press("sign-in")
        login_page(gui)
        gui.press(selector="#popup-sign-in", target="consent")
        popup = gui.popup_window()
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#continue')", target="popup")
        gui.wait_for(lambda: gui.window_name(popup) == f"127.0.0.1:{sb.port} - http - Sign-in popup", "its title")
        assert gui.js("!!window.opener", "popup")  # a real popup: its opener hears from it
        assert gui.js("typeof window.pywebview", "popup") == "undefined"  # and no bridge, as in its opener
        assert gui.page("popup")["url"] == f"{sb.url}/zephr/popup-id"
        gui.type_into("#email", JOE, target="popup")
        gui.type_into("#password", PASSWORD, target="popup")
        gui.press(selector="#continue", target="popup")
        # The popup tells its opener and closes; the opener, in the same session, goes on to consent.
        gui.wait_for(lambda: not gui.find_windows("Sign-in popup$"), "the popup to close itself")
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#allow')", target="consent")
        assert len(gui.pages()) == 2
        gui.press(selector="#allow", target="consent")
        first = wait_token(gui)
        assert first == sb.issued[-1]["access_token"]

        # A popup left open closes with the sign-in.
        gui.press("sign-in")
        login_page(gui)
        gui.press(selector="#popup-sign-in", target="consent")
        gui.wait_js("document.readyState === 'complete' && !!document.querySelector('#continue')", target="popup")
        gui.js("location.href = 'zoommtg://zoom.us/join?confno=1'; true", "popup")  # its rules: http(s) only
        consent_sign_in(gui)
        assert wait_token(gui, other_than=first) == sb.issued[-1]["access_token"]
        gui.wait_for(lambda: consent_gone(gui) and not gui.find_windows("Sign-in popup$"), "both windows to close")
        gui.wait_for(lambda: len(gui.pages()) == 1, "only the main page to be left")


def test_continue_in_your_browser_from_the_consent_window(tmp_path: Path, sb: Sandbox) -> None:
    opened = tmp_path / "opened-url.txt"
    recorder = "import sys; open(sys.argv[2], 'a').write(sys.argv[1] + '\\n')"
    browser = f"{sys.executable} -c {shlex.quote(recorder)} %s {shlex.quote(str(opened))}"
    with GuiApp(tmp_path / "gui", timeout=HARD_TIMEOUT, env={"BROWSER": browser}) as gui:
        seed_profile(gui, sb)
        gui.launch()
        gui.press("sign-in")
        listening = gui.wait_js("document.getElementById('listening').textContent")
        login_page(gui)
        state = authorize_state(gui)
        gui.press_consent_bar()  # the app's own bar above the page, with the real mouse
        gui.wait_for(lambda: consent_gone(gui), "the consent window to close")
        urls: list[str] = gui.wait_for(lambda: opened.exists() and opened.read_text().splitlines(), "the browser")
        assert len(urls) == 1 and urls[0].startswith(f"{sb.url}/zephr/oauth2?")
        assert parse_qs(urlsplit(urls[0]).query)["state"] == [state]  # the same sign-in: same state and PKCE
        status = "Waiting for you to click Allow in your browser..."
        gui.wait_for(lambda: gui.text("status-line") == status, "the browser waiting line")
        assert gui.js("document.getElementById('listening').textContent") == listening  # the same listener
        page = ScriptedUser().approve(urls[0])
        assert page.status_code == 200
        assert wait_token(gui) == sb.issued[-1]["access_token"]
