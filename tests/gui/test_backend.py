"""Where the sign-in happens on each pywebview backend: the app's own isolated window only on Qt WebEngine,
the system browser everywhere else (decided from the backend that runs, not from the platform)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from support.user import ScriptedUser
from test_gui_api import FakeClock, FakeShell, profile, sb  # noqa: F401  (fixtures)

from zephr_desktop.config import save_profile
from zephr_desktop.gui.api import page_functions
from zephr_desktop.gui.backend import Backend, running_backend
from zephr_desktop.gui.session import Session
from zephr_desktop.gui.shell import DesktopShell
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, Sandbox
from zephr_desktop.store import TokenStore

COCOA = "webview.platforms.cocoa"
QT = "webview.platforms.qt"


@pytest.mark.parametrize(
    ("module", "renderer", "isolated"),
    [
        (QT, "qtwebengine", True),
        (QT, "qtwebkit", False),  # Qt without WebEngine: the consent window is built on WebEngine
        ("webview.platforms.gtk", "gtkwebkit2", False),  # pywebview's fallback when Qt does not load on Linux
        (COCOA, "wkwebview", False),  # macOS
        ("webview.platforms.winforms", "edgechromium", False),  # Windows
        ("webview.platforms.winforms", "mshtml", False),
        ("webview.platforms.winforms", "cef", False),
        ("webview.platforms.android", "android-webkit", False),
        (None, None, False),  # not started, or unknown
    ],
)
def test_only_qt_webengine_isolates_the_sign_in(module: str | None, renderer: str | None, isolated: bool) -> None:
    reason = Backend(module, renderer).browser_only_reason()
    assert (reason is None) is isolated
    if reason is not None:
        assert reason.startswith("Sign-in opens in your browser")
        assert "Qt WebEngine" in reason


class _Native:
    pass


def _webview(module: str, renderer: str) -> Any:
    return types.SimpleNamespace(guilib=types.ModuleType(module), renderer=renderer)


def test_the_backend_is_the_one_that_runs_not_the_platform() -> None:
    # pywebview asked for Qt but fell back to Cocoa (no PyQt6): what runs decides.
    assert running_backend(_webview(COCOA, "wkwebview")) == Backend(COCOA, "wkwebview")
    # The window's native object says what it is made of; it wins over a module name that disagrees.
    _Native.__module__ = COCOA
    window = types.SimpleNamespace(native=_Native())
    backend = running_backend(_webview(QT, "qtwebengine"), window)
    assert backend.module == COCOA and backend.browser_only_reason() is not None
    _Native.__module__ = QT
    assert running_backend(_webview(QT, "qtwebengine"), window).browser_only_reason() is None
    assert running_backend(types.SimpleNamespace()).browser_only_reason() is not None  # nothing started


def test_the_desktop_shell_answers_from_its_backend() -> None:
    shell = DesktopShell()
    try:
        assert shell.browser_only() is not None  # before the window exists nothing is known to be safe
        shell.backend = Backend(COCOA, "wkwebview")
        assert "Cocoa (wkwebview)" in str(shell.browser_only())
        shell.backend = Backend(QT, "qtwebengine")
        assert shell.browser_only() is None
    finally:
        shell.close()


@pytest.fixture
def unsafe_shell() -> FakeShell:
    return FakeShell(browser_only=Backend(COCOA, "wkwebview").browser_only_reason())


@pytest.fixture
def session(unsafe_shell: FakeShell) -> Iterator[Session]:
    state = Session(unsafe_shell, store=TokenStore(notice=lambda _m: None), clock=FakeClock())
    try:
        yield state
    finally:
        state.shutdown()


def test_without_isolation_the_sign_in_goes_to_the_browser(
    session: Session,
    unsafe_shell: FakeShell,
    profile: Profile,  # noqa: F811
    sb: Sandbox,  # noqa: F811
) -> None:
    page = {fn.__name__: fn for fn in page_functions(session, unsafe_shell)}
    idle = page["state"]()
    assert idle["browser_only"] and "Cocoa" in idle["browser_only"]

    waiting = page["sign_in"]()
    assert waiting["ok"] and waiting["signing_in"] and waiting["in_browser"]
    assert unsafe_shell.consents == []  # no window of the app ever shows the site
    (url,) = unsafe_shell.opened
    assert url.startswith(f"{sb.url}/zephr/oauth2?")

    ScriptedUser().approve(url)
    unsafe_shell.next_event("signed_in")
    assert page["state"]()["token"]["access_token"] == sb.issued[-1]["access_token"]


def test_a_browser_that_cannot_open_frees_the_port(
    session: Session,
    unsafe_shell: FakeShell,
    profile: Profile,  # noqa: F811
) -> None:
    def broken(url: str) -> None:
        raise OSError("no browser")

    unsafe_shell.open_browser = broken  # type: ignore[method-assign]
    answer = {fn.__name__: fn for fn in page_functions(session, unsafe_shell)}["sign_in"]()
    assert answer["ok"] is False
    unsafe_shell.next_event("sign_in_cancelled")
    assert session.listening_on() is None


def test_without_isolation_a_redirect_uri_elsewhere_is_refused_not_sent_to_the_browser(
    session: Session,
    unsafe_shell: FakeShell,
    sb: Sandbox,  # noqa: F811
) -> None:
    # The browser would deliver the code to the third party itself: only the Qt window can catch it.
    elsewhere = "https://thirdparty.invalid/auth/callback"
    save_profile(
        Profile.create(
            name="elsewhere",
            site_url=sb.url,
            token_url=sb.token_url,
            client_id=DEFAULT_CLIENT_ID,
            redirect_uri=elsewhere,
        )
    )
    page = {fn.__name__: fn for fn in page_functions(session, unsafe_shell)}
    assert page["select_profile"]("elsewhere")["ok"]
    answer = page["sign_in"]()
    assert (
        answer["ok"] is False and "not on this computer" in answer["error"] and "zephr-desktop login" in answer["error"]
    )
    assert unsafe_shell.opened == [] and unsafe_shell.consents == []
    assert session.listening_on() is None
