"""The page's functions (``gui.api``) over the window's ``Session``, without Qt: a fake window shell, a fake
clock, the real sign-in engine and the sandbox."""

from __future__ import annotations

import queue
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import evidence
from support.signin import add_profile
from support.user import ScriptedUser

from zephr_desktop.config import load_profiles, save_profile
from zephr_desktop.gui.api import copy_text_for, page_functions
from zephr_desktop.gui.contracts import ConsentHooks
from zephr_desktop.gui.session import Session
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox
from zephr_desktop.store import TokenStore

SURFACE = {
    "init", "state", "select_profile", "save_profile", "remove_profile", "sign_in", "cancel_sign_in",
    "open_in_browser", "refresh", "set_auto_refresh", "copy", "copy_text", "test_token", "sign_out", "secret_status",
    "check_profile", "about",
}  # fmt: skip


class FakeClock:
    """The session's clock: tests move it instead of sleeping. Like a real clock, no two reads are equal."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Page:
    """Calls the page's functions by name, as ``pywebview.api.<name>(...)`` does."""

    def __init__(self, functions: list[Callable[..., dict[str, Any]]]) -> None:
        self.functions = {fn.__name__: fn for fn in functions}

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        return self.functions[name]


class FakeConsent:
    def __init__(self, url: str, hooks: ConsentHooks) -> None:
        self.url = url
        self.hooks = hooks
        self.on_user_close = hooks.on_user_close
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeShell:
    """Records what the bridge asks of the windows."""

    def __init__(self, browser_only: str | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.consents: list[FakeConsent] = []
        self.copied: list[str] = []
        self.opened: list[str] = []
        self.browser_only_reason = browser_only

    def push(self, event: dict[str, Any]) -> None:
        self.events.put(event)

    def open_consent(self, url: str, profile: Profile, hooks: ConsentHooks) -> FakeConsent:
        consent = FakeConsent(url, hooks)
        self.consents.append(consent)
        return consent

    def copy_text(self, text: str) -> float | None:
        self.copied.append(text)
        return 120.0

    def open_browser(self, url: str) -> None:
        self.opened.append(url)

    def browser_only(self) -> str | None:
        return self.browser_only_reason

    def next_event(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event["type"] == kind:
                return event
        raise AssertionError(f"no {kind} event within {timeout} s")


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The suite's sandbox (conftest.py)."""
    return sandbox


@pytest.fixture
def profile(sb: Sandbox) -> Profile:
    return add_profile(sb, "sb")


@pytest.fixture
def shell() -> FakeShell:
    return FakeShell()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def session(shell: FakeShell, clock: FakeClock) -> Iterator[Session]:
    state = Session(shell, store=TokenStore(notice=lambda _m: None), clock=clock)
    try:
        yield state
    finally:
        state.shutdown()


@pytest.fixture
def api(session: Session, shell: FakeShell) -> Page:
    return Page(page_functions(session, shell))


def sign_in(api: Page, shell: FakeShell, *, allow: bool = True) -> dict[str, Any]:
    started = api.sign_in()
    assert started["ok"] and started["signing_in"], started
    ScriptedUser().approve(shell.consents[-1].url, allow=allow)
    shell.next_event("signed_in" if allow else "sign_in_failed")
    return api.state()


def test_the_page_sees_exactly_the_surface(session: Session, shell: FakeShell) -> None:
    functions = page_functions(session, shell)
    assert {fn.__name__ for fn in functions} == SURFACE and len(functions) == len(SURFACE)
    assert all(type(fn).__name__ == "function" for fn in functions)  # plain closures, no bound methods


@pytest.mark.parametrize(
    ("kind", "scopes", "expected"),
    [
        ("token", (), "oa_abc"),
        ("header", (), "Authorization: Bearer oa_abc"),
        (
            "curl",
            ("user.profile:read",),
            "curl -H 'Authorization: Bearer oa_abc' https://news.example.com/blaize/profile",
        ),
        (
            "curl",
            ("user.account:read",),
            "curl -H 'Authorization: Bearer oa_abc' https://news.example.com/blaize/account",
        ),
        ("export", (), "export ZEPHR_ACCESS_TOKEN=oa_abc"),
    ],
)
def test_copy_formats(kind: str, scopes: tuple[str, ...], expected: str) -> None:
    site = Profile.create(name="n", site_url="https://news.example.com", client_id="c")
    token = Token(access_token="oa_abc", token_type="bearer", expires_at=None, obtained_at=0.0, scopes=scopes)
    assert copy_text_for(kind, token, site) == expected


# Odd but RFC 3986-valid site URLs: $ ( ) ' ; & ! are sub-delims, and unquoted in a shell they run commands.
ODD_SITES = [
    "https://news.example.com/a$(touch$IFS'marker')b",
    "https://news.example.com/x;touch$IFS'marker';y",
    "https://news.example.com/p&touch$IFS'marker'&q",
    "https://news.example.com/it's$HOME!x*",
]


@pytest.mark.reliability("copy-formats")
@pytest.mark.parametrize("site", ODD_SITES)
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to run the copied command")
def test_copy_curl_is_one_safe_shell_command(api: Page, shell: FakeShell, site: str, tmp_path: Path) -> None:
    assert api.save_profile({**FORM, "name": "odd", "site_url": site})["ok"]
    TokenStore(notice=lambda _m: None).save(load_profiles().get("odd"), Token("oa_abc.DEF-1~+/=", "bearer", None, 0.0))
    assert api.copy("curl")["ok"]
    # Run what a person would paste, with curl replaced by a function that prints the argv it got.
    script = "curl() { printf '%s\\0' \"$@\"; }\n" + shell.copied[-1]
    cwd = tmp_path / "shell"
    cwd.mkdir()
    ran = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, timeout=10, check=True)
    argv = ran.stdout.decode().split("\0")[:-1]
    intended = ["-H", "Authorization: Bearer oa_abc.DEF-1~+/=", site + "/blaize/profile"]
    evidence.record(site=site, argv_exact=argv == intended, ran=len(list(cwd.iterdir())))
    assert argv == intended
    assert list(cwd.iterdir()) == []  # nothing ran


@pytest.mark.reliability("copy-formats")
def test_the_settings_form_refuses_a_shell_command_in_the_site_url(api: Page) -> None:
    result = api.save_profile({**FORM, "site_url": "https://news.example.com/$(touch marker)"})
    assert result["ok"] is False and result["field"] == "site_url"
    assert "characters a URL may not hold" in result["error"] and load_profiles().profiles == {}
    evidence.record(refused_by="the settings form")


FORM = {"site_url": "https://news.example.com", "client_id": "abc", "scopes": ["user.profile:read"]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"site_url": "ftp://x.example.com"}, "site_url"),
        ({"site_url": "http://news.example.com"}, "site_url"),
        ({"client_id": ""}, "client_id"),
        ({"redirect_uri": "http://example.com:8765/callback"}, "redirect_uri"),
        ({"scopes": []}, "scopes"),
        ({"name": "bad name!"}, "name"),
        ({"site_url": "https://news.example.com/$(touch marker)"}, "site_url"),
        ({"token_url": "https://auth.example.com/token`id`"}, "token_url"),
    ],
)
def test_save_profile_names_the_bad_field(api: Page, changes: dict[str, Any], field: str) -> None:
    form = {"site_url": "https://news.example.com", "client_id": "abc", "scopes": ["user.account:read"], **changes}
    result = api.save_profile(form)
    assert result["ok"] is False and result["field"] == field, result
    assert "field '" not in result["error"]  # the short message, for next to the field
    assert load_profiles().profiles == {}


def test_save_profile_keeps_the_secret_out_of_the_file(api: Page) -> None:
    form = {"site_url": "https://news.example.com", "client_id": "abc", "client_secret": "s3cr:et", "scopes": []}
    form["scopes"] = ["user.profile:read"]
    result = api.save_profile(form)
    assert result["ok"], result
    assert result["current"] == "news.example.com"
    assert "has_secret" not in result["profiles"][0]  # init and state never touch the secret store
    assert api.secret_status("news.example.com") == {"ok": True, "has_secret": True}
    assert "s3cr:et" not in str(result)
    assert TokenStore(notice=lambda _m: None).get_client_secret("news.example.com") == "s3cr:et"
    again = api.save_profile(form)
    assert again["ok"] is False and again["field"] == "name"


def test_errors_come_back_as_words(api: Page) -> None:
    for call in (api.sign_in, api.refresh, api.test_token, api.sign_out, lambda: api.copy("token")):
        result = call()
        assert result["ok"] is False
        assert "No profile yet" in result["error"]
    assert api.copy("nonsense")["error"] == "Unknown copy format 'nonsense'."


def test_sign_in_copy_refresh_and_sign_out(api: Page, shell: FakeShell, sb: Sandbox, profile: Profile) -> None:
    state = sign_in(api, shell)
    token = state["token"]
    assert token["access_token"] == sb.issued[-1]["access_token"]
    assert token["has_refresh"] and not token["expired"]
    assert shell.consents[-1].closed
    assert state["notice"] == f"Signed in to {sb.url}."

    assert api.copy("export") == {"ok": True, "kind": "export", "clear_after": 120.0}
    assert shell.copied[-1] == f"export ZEPHR_ACCESS_TOKEN={token['access_token']}"

    tested = api.test_token()
    assert tested["all_ok"] and set(tested["results"]) == {"GET /blaize/account", "GET /blaize/profile"}

    refreshed = api.refresh()
    assert refreshed["token"]["access_token"] == sb.issued[-1]["access_token"] != token["access_token"]

    assert api.sign_out()["token"] is None


def test_closing_the_consent_window_cancels(api: Page, shell: FakeShell, profile: Profile) -> None:
    assert api.sign_in()["ok"]
    shell.consents[-1].on_user_close()
    shell.next_event("sign_in_cancelled")
    state = api.state()
    assert state["notice"] == "Sign-in cancelled: the sign-in window was closed." and state["error"] is None
    assert not state["signing_in"] and state["token"] is None


def test_deny_and_open_in_browser(api: Page, shell: FakeShell, profile: Profile) -> None:
    assert api.sign_in()["ok"]
    assert api.sign_in()["error"] == "A sign-in is already waiting for you to click Allow."
    moved = api.open_in_browser()
    assert moved["in_browser"] and shell.opened == [shell.consents[-1].url] and shell.consents[-1].closed
    ScriptedUser().approve(shell.opened[-1], allow=False)
    shell.next_event("sign_in_failed")
    assert "denied" in api.state()["error"]


def test_continue_in_your_browser_from_the_consent_window(api: Page, shell: FakeShell, profile: Profile) -> None:
    assert api.sign_in()["ok"]
    consent = shell.consents[-1]
    assert consent.hooks.catch_redirect is None  # a loopback listener receives the redirect
    assert consent.hooks.continue_in_browser is not None
    consent.hooks.continue_in_browser()  # the window's own button
    assert shell.opened == [consent.url] and consent.closed  # the same authorize URL: same state and PKCE
    shell.next_event("sign_in_in_browser")
    assert api.state()["in_browser"]
    ScriptedUser().approve(shell.opened[-1])  # and the same listener still receives the redirect
    shell.next_event("signed_in")
    assert api.state()["token"] is not None


THIRD_PARTY = "https://thirdparty.invalid/auth/callback"


@pytest.fixture
def elsewhere(sb: Sandbox) -> Profile:
    """A profile whose registered redirect URI is the third party's."""
    from dataclasses import replace

    from zephr_desktop.sandbox.model import DEFAULT_CLIENT

    sb.register_client(replace(DEFAULT_CLIENT, redirect_uris=(*DEFAULT_CLIENT.redirect_uris, THIRD_PARTY)))
    created = Profile.create(name="elsewhere", site_url=sb.url, token_url=sb.token_url, client_id=DEFAULT_CLIENT_ID,
                             redirect_uri=THIRD_PARTY)  # fmt: skip
    save_profile(created)
    TokenStore(notice=lambda _m: None).set_client_secret("elsewhere", DEFAULT_CLIENT_SECRET)
    return created


def test_a_redirect_caught_in_the_window_signs_in_when_its_state_is_ours(
    api: Page, shell: FakeShell, sb: Sandbox, elsewhere: Profile
) -> None:
    started = api.sign_in()
    assert started["ok"] and started["redirect_caught"] and started["redirect_uri"] == THIRD_PARTY
    hooks = shell.consents[-1].hooks
    assert hooks.catch_redirect == THIRD_PARTY
    assert hooks.continue_in_browser is None  # the browser would take the code to the third party
    assert "not on this computer" in api.open_in_browser()["error"] and shell.opened == []
    final = ScriptedUser().consent(shell.consents[-1].url)
    refused = hooks.hand_over(final.replace("state=", "state=x"))
    assert refused is not None and "does not belong to this sign-in" in refused
    assert api.state()["signing_in"]  # a forged redirect does not end the sign-in
    assert hooks.hand_over(final) is None
    shell.next_event("signed_in")
    assert api.state()["token"]["access_token"] == sb.issued[-1]["access_token"]
    assert shell.consents[-1].closed
    assert hooks.hand_over(final) is not None  # over: nothing more is taken


def test_saving_a_profile_with_such_a_uri_says_how_it_is_caught(api: Page) -> None:
    saved = api.save_profile({**FORM, "name": "third", "redirect_uri": THIRD_PARTY})
    assert saved["ok"], saved
    assert "catches the redirect to " + THIRD_PARTY in saved["notice"] and "paste the final URL" in saved["notice"]


def test_auto_refresh_renews_before_expiry_and_can_be_turned_off(
    api: Page, session: Session, shell: FakeShell, clock: FakeClock, sb: Sandbox, profile: Profile
) -> None:
    first = sign_in(api, shell)["token"]
    issued = len(sb.issued)
    session.start_watching(tick=0.02)
    clock.advance(first["seconds_left"] - 120)  # two minutes left: not due yet (the margin is 60 s)
    session.watch_once()
    assert len(sb.issued) == issued

    clock.advance(90)  # thirty seconds left: the watcher refreshes
    shell.next_event("token_changed", timeout=10)
    renewed = api.state()
    assert renewed["token"]["access_token"] == sb.issued[-1]["access_token"] != first["access_token"]
    assert len(sb.issued) == issued + 1
    assert renewed["token"]["seconds_left"] == pytest.approx(3600, abs=5)
    assert renewed["notice"] == "Token refreshed automatically before it expired."

    assert api.set_auto_refresh(False)["auto_refresh"] is False
    clock.advance(3600 + 10)
    session.watch_once()
    assert len(sb.issued) == issued + 1
    assert api.state()["token"]["expired"]


def test_a_failed_auto_refresh_is_retried_after_a_while_and_a_refused_one_never(
    api: Page, session: Session, shell: FakeShell, clock: FakeClock, sb: Sandbox, profile: Profile
) -> None:
    first = sign_in(api, shell)["token"]
    clock.advance(first["seconds_left"] - 30)
    sb.settings.fault = "500"
    asked = len(sb.token_requests)
    session.watch_once()
    assert len(sb.token_requests) == asked + 1
    assert api.state()["error"].startswith("Automatic refresh failed: ")
    clock.advance(10)
    session.watch_once()  # too soon to try again
    assert len(sb.token_requests) == asked + 1

    clock.advance(25)  # past the 30 s retry delay; the server has recovered
    sb.settings.fault = None
    session.watch_once()
    assert len(sb.token_requests) == asked + 2
    state = api.state()
    assert state["error"] is None and state["token"]["access_token"] == sb.issued[-1]["access_token"]

    clock.advance(state["token"]["seconds_left"] - 30)
    sb.settings.fault = "invalid_grant"
    session.watch_once()
    clock.advance(3600)
    session.watch_once()
    assert len(sb.token_requests) == asked + 3  # a refused grant does not heal by retrying


def test_tokens_changed_by_another_process_reach_the_page(
    api: Page, session: Session, shell: FakeShell, profile: Profile
) -> None:
    sign_in(api, shell)
    session.watch_once()
    assert shell.events.empty()
    TokenStore(notice=lambda _m: None).delete("sb")  # e.g. `zephr-desktop logout` in a terminal
    session.watch_once()
    assert shell.events.get_nowait() == {"type": "token_changed"}
    assert api.state()["token"] is None


def test_unknown_requested_profile_is_reported(shell: FakeShell, profile: Profile) -> None:
    session = Session(shell, store=TokenStore(notice=lambda _m: None), profile_name="nope")
    result = Page(page_functions(session, shell)).init()
    assert result["ok"] and result["current"] == "sb"
    assert "No profile named 'nope'" in result["error"]


def test_changing_the_site_forgets_the_old_token(api: Page, shell: FakeShell, profile: Profile) -> None:
    sign_in(api, shell)
    form = {**api.state()["profiles"][0], "original_name": "sb"}
    assert api.save_profile(form)["token"] is not None  # nothing that matters changed
    form["client_id"] = "another-client"
    assert api.save_profile(form)["token"] is None


@pytest.mark.parametrize(
    ("scheme", "host", "port", "title"),
    [
        ("https", "news.example.com", -1, "news.example.com - https - Sign in to Zephr"),
        ("https", "news.example.com", 443, "news.example.com - https - Sign in to Zephr"),
        ("http", "127.0.0.1", 8780, "127.0.0.1:8780 - http - Sign in to Zephr"),
        ("http", "::1", 8780, "[::1]:8780 - http - Sign in to Zephr"),
        ("", "", -1, "Sign in to Zephr"),
        # International hosts: punycode first, so a look-alike cannot pass for the real name.
        ("https", "xn--pple-43d.com", -1, "xn--pple-43d.com (аpple.com) - https - Sign in to Zephr"),
        ("https", "аpple.com", 443, "xn--pple-43d.com (аpple.com) - https - Sign in to Zephr"),
        ("https", "xn--80ak6aa92e.com", -1, "xn--80ak6aa92e.com (аррӏе.com) - https - Sign in to Zephr"),
        ("http", "xn--pple-43d.test", 8080, "xn--pple-43d.test:8080 (аpple.test) - http - Sign in to Zephr"),
        ("https", "login.xn--pple-43d.com", -1, "login.xn--pple-43d.com (login.аpple.com) - https - Sign in to Zephr"),
        # No readable form when it would hide something (a direction override) or is not punycode at all.
        ("https", "xn--paypalmoc-lh0e", -1, "xn--paypalmoc-lh0e - https - Sign in to Zephr"),
        ("https", "xn--zz.example.com", -1, "xn--zz.example.com - https - Sign in to Zephr"),
        # Pages without a web origin say so instead of going blank.
        ("about", "", -1, "(no trustworthy origin) - Sign in to Zephr"),
        ("blob", "", -1, "(no trustworthy origin) - Sign in to Zephr"),
        ("data", "", -1, "(no trustworthy origin) - Sign in to Zephr"),
        ("file", "", -1, "(no trustworthy origin) - Sign in to Zephr"),
        ("https", "", -1, "(no trustworthy origin) - Sign in to Zephr"),
    ],
)
def test_consent_title_shows_origin_and_scheme(scheme: str, host: str, port: int, title: str) -> None:
    from zephr_desktop.gui.origin import format_title

    assert format_title(scheme, host, port) == title


def test_no_display_is_said_in_words(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from zephr_desktop.gui import run

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert run() == 1
    assert "No graphical display" in capsys.readouterr().err


def test_editing_a_profile_keeps_what_the_form_does_not_show(api: Page) -> None:
    from zephr_desktop.config import save_profile

    save_profile(
        Profile.create(
            name="rfc",
            site_url="https://news.example.com",
            client_id="abc",
            token_format="form",
            client_auth="body",
            pkce=False,
        )
    )
    form = {
        "original_name": "rfc",
        "name": "rfc",
        "site_url": "https://news.example.com",
        "client_id": "abc",
        "scopes": ["user.account:read"],
        "redirect_uri": "http://127.0.0.1:8765/callback",
    }
    assert api.save_profile(form)["ok"]
    edited = load_profiles().profiles["rfc"]
    assert (edited.token_format, edited.client_auth, edited.pkce) == ("form", "body", False)
    assert edited.scopes == ("user.account:read",)


def test_a_zephr_profile_with_another_servers_scope_is_saved_with_a_notice(api: Page) -> None:
    result = api.save_profile({**FORM, "scopes": ["user.profile:read", "openid"]})
    assert result["ok"], result
    assert load_profiles().profiles["news.example.com"].scopes == ("user.profile:read", "openid")
    assert "'openid'" in result["notice"] and "is not one of Zephr's scopes" in result["notice"]
    plain = api.save_profile({**FORM, "name": "plain", "scopes": ["user.profile:read"]})
    assert plain["ok"] and "Zephr's scopes" not in plain["notice"]


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    assert result["ok"], result
    return {f["check"]: f["status"] for f in result["findings"]}


def test_check_profile_reports_the_forms_profile_before_any_sign_in(api: Page, sb: Sandbox, profile: Profile) -> None:
    form = {"original_name": "sb", "name": "sb", "site_url": sb.url, "client_id": DEFAULT_CLIENT_ID,
            "token_url": sb.token_url, "redirect_uri": "http://127.0.0.1:0/callback",
            "scopes": ["user.account:read"]}  # fmt: skip
    good = api.check_profile(form)  # the stored secret is used when the form leaves it blank
    assert _statuses(good) == dict.fromkeys(("site", "authorize", "token_endpoint", "client"), "ok")
    assert good["all_ok"] is True

    wrong = api.check_profile({**form, "client_secret": "not-the-secret"})  # unsaved edits are what is checked
    assert _statuses(wrong)["client"] == "problem" and wrong["all_ok"] is False
    assert any("refused the client credentials" in f["message"] for f in wrong["findings"])
    assert "not-the-secret" not in str(wrong) and DEFAULT_CLIENT_SECRET not in str(wrong)

    unregistered = api.check_profile({**form, "redirect_uri": "http://127.0.0.1:8765/elsewhere"})
    assert _statuses(unregistered)["authorize"] == "problem"
    assert any("refused the redirect URI http://127.0.0.1:8765/elsewhere" in f["message"]
               for f in unregistered["findings"])  # fmt: skip
    assert sb.stats["token_authorization_code"] == 0  # a made-up code never gets a token
    assert load_profiles().profiles["sb"] == profile  # checking saves nothing


def test_check_profile_names_the_bad_field(api: Page) -> None:
    result = api.check_profile({**FORM, "site_url": "http://news.example.com"})
    assert result == {"ok": False, "error": result["error"], "field": "site_url"} and "https" in result["error"]
