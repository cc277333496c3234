"""The page's bridge (``gui.api.Api``) without Qt: a fake window shell, the real engine and sandbox."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.user import ScriptedUser

from zephr_desktop.config import Profile, load_profiles, save_profile
from zephr_desktop.gui.api import Api, copy_text_for
from zephr_desktop.oauth import Token
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

SURFACE = {
    "init", "state", "select_profile", "save_profile", "remove_profile", "sign_in", "cancel_sign_in",
    "open_in_browser", "refresh", "set_auto_refresh", "copy", "copy_text", "test_token", "sign_out", "secret_status",
}  # fmt: skip


class FakeConsent:
    def __init__(self, url: str, on_user_close: Callable[[], None]) -> None:
        self.url = url
        self.on_user_close = on_user_close
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeShell:
    """Records what the bridge asks of the windows."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.consents: list[FakeConsent] = []
        self.copied: list[str] = []
        self.opened: list[str] = []

    def push(self, event: dict[str, Any]) -> None:
        self.events.put(event)

    def open_consent(self, url: str, profile: Profile, on_user_close: Callable[[], None]) -> FakeConsent:
        consent = FakeConsent(url, on_user_close)
        self.consents.append(consent)
        return consent

    def copy_text(self, text: str) -> float | None:
        self.copied.append(text)
        return 120.0

    def open_browser(self, url: str) -> None:
        self.opened.append(url)

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
def sb(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    expires_in = getattr(request, "param", 3600)
    server = Sandbox(settings=SandboxSettings(loopback_any_port=True, expires_in=expires_in)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def profile(sb: Sandbox) -> Profile:
    created = Profile.create(
        name="sb",
        site_url=sb.url,
        token_url=sb.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri="http://127.0.0.1:0/callback",
    )
    save_profile(created)
    TokenStore(notice=lambda _m: None).set_client_secret("sb", DEFAULT_CLIENT_SECRET)
    return created


@pytest.fixture
def shell() -> FakeShell:
    return FakeShell()


@pytest.fixture
def api(shell: FakeShell) -> Iterator[Api]:
    bridge = Api(shell, store=TokenStore(notice=lambda _m: None), tick=0.1)
    try:
        yield bridge
    finally:
        bridge.shutdown()


def sign_in(api: Api, shell: FakeShell, *, allow: bool = True) -> dict[str, Any]:
    started = api.sign_in()
    assert started["ok"] and started["signing_in"], started
    ScriptedUser().approve(shell.consents[-1].url, allow=allow)
    shell.next_event("signed_in" if allow else "sign_in_failed")
    return api.state()


def test_the_page_sees_exactly_the_surface() -> None:
    public = [getattr(Api, name) for name in dir(Api) if not name.startswith("_")]
    exposed = {f.__name__ for f in public if callable(f) and getattr(f, "_serializable", True)}
    assert exposed == SURFACE


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


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"site_url": "ftp://x.example.com"}, "site_url"),
        ({"site_url": "http://news.example.com"}, "site_url"),
        ({"client_id": ""}, "client_id"),
        ({"redirect_uri": "http://example.com:8765/callback"}, "redirect_uri"),
        ({"scopes": []}, "scopes"),
        ({"name": "bad name!"}, "name"),
    ],
)
def test_save_profile_names_the_bad_field(api: Api, changes: dict[str, Any], field: str) -> None:
    form = {"site_url": "https://news.example.com", "client_id": "abc", "scopes": ["user.account:read"], **changes}
    result = api.save_profile(form)
    assert result["ok"] is False and result["field"] == field, result
    assert "field '" not in result["error"]  # the short message, for next to the field
    assert load_profiles().profiles == {}


def test_save_profile_keeps_the_secret_out_of_the_file(api: Api) -> None:
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


def test_errors_come_back_as_words(api: Api) -> None:
    for call in (api.sign_in, api.refresh, api.test_token, api.sign_out, lambda: api.copy("token")):
        result = call()
        assert result["ok"] is False
        assert "No profile yet" in result["error"]
    assert api.copy("nonsense")["error"] == "Unknown copy format 'nonsense'."


def test_sign_in_copy_refresh_and_sign_out(api: Api, shell: FakeShell, sb: Sandbox, profile: Profile) -> None:
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


def test_closing_the_consent_window_cancels(api: Api, shell: FakeShell, profile: Profile) -> None:
    assert api.sign_in()["ok"]
    shell.consents[-1].on_user_close()
    shell.next_event("sign_in_cancelled")
    state = api.state()
    assert state["notice"] == "Sign-in cancelled: the sign-in window was closed." and state["error"] is None
    assert not state["signing_in"] and state["token"] is None


def test_deny_and_open_in_browser(api: Api, shell: FakeShell, profile: Profile) -> None:
    assert api.sign_in()["ok"]
    assert api.sign_in()["error"] == "A sign-in is already waiting for you to click Allow."
    moved = api.open_in_browser()
    assert moved["in_browser"] and shell.opened == [shell.consents[-1].url] and shell.consents[-1].closed
    ScriptedUser().approve(shell.opened[-1], allow=False)
    shell.next_event("sign_in_failed")
    assert "denied" in api.state()["error"]


@pytest.mark.parametrize("sb", [3], indirect=True)
def test_auto_refresh_renews_and_can_be_turned_off(api: Api, shell: FakeShell, sb: Sandbox, profile: Profile) -> None:
    first = sign_in(api, shell)["token"]["access_token"]
    api.start_background()
    shell.next_event("token_changed", timeout=10)
    assert api.state()["token"]["access_token"] != first
    assert len(sb.issued) >= 2

    assert api.set_auto_refresh(False)["auto_refresh"] is False
    time.sleep(0.3)
    count = len(sb.issued)
    time.sleep(3.5)
    assert len(sb.issued) == count
    assert api.state()["token"]["expired"]


def test_unknown_requested_profile_is_reported(shell: FakeShell, profile: Profile) -> None:
    bridge = Api(shell, store=TokenStore(notice=lambda _m: None), profile_name="nope")
    result = bridge.init()
    assert result["ok"] and result["current"] == "sb"
    assert "No profile named 'nope'" in result["error"]


def test_changing_the_site_forgets_the_old_token(api: Api, shell: FakeShell, profile: Profile) -> None:
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
    from zephr_desktop.gui.consent import format_title

    assert format_title(scheme, host, port) == title


def test_no_display_is_said_in_words(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from zephr_desktop.gui import run

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert run() == 1
    assert "No graphical display" in capsys.readouterr().err


def test_editing_a_profile_keeps_what_the_form_does_not_show(api: Api) -> None:
    from zephr_desktop.config import save_profile

    save_profile(Profile.create(name="rfc", site_url="https://news.example.com", client_id="abc",
                                token_format="form", client_auth="body", pkce=False))
    form = {"original_name": "rfc", "name": "rfc", "site_url": "https://news.example.com", "client_id": "abc",
            "scopes": ["user.account:read"], "redirect_uri": "http://127.0.0.1:8765/callback"}
    assert api.save_profile(form)["ok"]
    edited = load_profiles().profiles["rfc"]
    assert (edited.token_format, edited.client_auth, edited.pkce) == ("form", "body", False)
    assert edited.scopes == ("user.account:read",)
