"""A registered redirect URI that is not on this computer (``https://thirdpartyurl.com/auth/callback``).

Nothing listens: the CLI takes the final URL pasted on stdin, the app's window catches the
redirect (tests/gui/test_gui_consent.py). Either way, only a URL whose state is this
sign-in's ends the wait, and the site named in the URI never gets the code from the app.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest
from support.cli import call, finish, run, start
from support.signin import cli_add_profile, start_login
from support.user import ScriptedUser

from zephr_desktop.errors import AccessDeniedError, CallbackError, LoginCancelledError
from zephr_desktop.gui.origin import RedirectTarget
from zephr_desktop.login import LoginFlow
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from zephr_desktop.sandbox.model import DEFAULT_CLIENT
from zephr_desktop.store import TokenStore

THIRD_PARTY = "https://thirdparty.invalid/auth/callback"


@pytest.fixture
def sb(sandbox: Any) -> Any:
    """The sandbox with the third party's redirect URI registered for its client, as a site admin would."""
    sandbox.register_client(replace(DEFAULT_CLIENT, redirect_uris=(*DEFAULT_CLIENT.redirect_uris, THIRD_PARTY)))
    return sandbox


def add_profile(env: dict[str, str], sb: Any, redirect: str = THIRD_PARTY) -> str:
    return cli_add_profile(env, sb.url, sb.token_url, name="elsewhere", redirect_uri=redirect).err


def test_profile_add_says_how_the_redirect_is_caught(child_env: dict[str, str], sb: Any) -> None:
    said = add_profile(child_env, sb)
    assert THIRD_PARTY in said
    assert "catches the redirect" in said and "before it is sent" in said and "paste the final URL" in said
    shown = call(child_env, "profile", "show", "elsewhere")
    assert f'"redirect_uri": "{THIRD_PARTY}"' in shown.out  # kept exactly as registered


def test_no_browser_takes_the_pasted_final_url(child_env: dict[str, str], sb: Any) -> None:
    add_profile(child_env, sb)
    proc, url = start_login(child_env)
    assert proc.stdin is not None
    assert f"redirect_uri={urlencode({'': THIRD_PARTY})[1:]}" in url  # the registered URI, exactly
    final = ScriptedUser().consent(url)  # where the browser ends up; nobody requests it
    assert final.startswith(THIRD_PARTY + "?code=")
    forged = final.replace("state=", "state=forged")
    proc.stdin.write(f"{forged}\n{final}\n")
    proc.stdin.flush()
    result = finish(proc)
    assert result.code == 0, result.err
    assert "not on this computer" in result.err and "address bar" in result.err
    assert "does not belong to this sign-in" in result.err  # the forged one was refused, the wait went on
    assert call(child_env, "token").out.strip() == sb.issued[-1]["access_token"]
    assert len(sb.issued) == 1


def test_browser_mode_asks_for_the_address_bar(child_env: dict[str, str], sb: Any, tmp_path: Any) -> None:
    import shlex
    import sys

    opened = tmp_path / "opened.txt"
    recorder = "import sys; open(sys.argv[2], 'w').write(sys.argv[1])"
    env = {**child_env, "BROWSER": f"{sys.executable} -c {shlex.quote(recorder)} %s {shlex.quote(str(opened))}"}
    add_profile(env, sb)
    proc = start(env, "login", "--timeout", "20")
    assert proc.stdin is not None
    deadline = threading.Event()
    while not opened.exists() and not deadline.wait(0.05):
        assert proc.poll() is None
    url = opened.read_text()
    proc.stdin.write(ScriptedUser().consent(url) + "\n")
    proc.stdin.flush()
    result = finish(proc)
    assert result.code == 0, result.err
    assert f"sends your browser to {THIRD_PARTY}" in result.err and "address bar" in result.err
    assert call(env, "token").out.strip() == sb.issued[-1]["access_token"]


def test_a_pasted_deny_ends_the_sign_in(child_env: dict[str, str], sb: Any) -> None:
    add_profile(child_env, sb)
    proc, url = start_login(child_env)
    assert proc.stdin is not None
    proc.stdin.write(ScriptedUser().consent(url, allow=False) + "\n")
    proc.stdin.flush()
    result = finish(proc)
    assert result.code == 1 and "denied" in result.err and "Traceback" not in result.err


def test_stdin_closed_without_a_url_fails_at_once(child_env: dict[str, str], sb: Any) -> None:
    add_profile(child_env, sb)
    result = run(child_env, "login", "--no-browser", "--timeout", "60", stdin="", timeout=20)
    assert result.code == 1, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("zephr-desktop: ")]
    assert len(lines) == 1 and "Standard input ended" in lines[0] and THIRD_PARTY in lines[0]


# -- the flow without a listener ------------------------------------------------------------------------
@pytest.fixture
def flow(sb: Any) -> LoginFlow:
    profile = Profile.create(name="elsewhere", site_url=sb.url, token_url=sb.token_url, client_id=DEFAULT_CLIENT_ID,
                             redirect_uri=THIRD_PARTY)  # fmt: skip
    return LoginFlow(profile, DEFAULT_CLIENT_SECRET, store=TokenStore(notice=lambda _m: None), timeout=20)


def test_the_flow_binds_nothing_and_takes_only_its_own_redirect(flow: LoginFlow, sb: Any) -> None:
    url = flow.start()
    assert not flow.listens and flow.redirect_uri == THIRD_PARTY
    final = ScriptedUser().consent(url)
    for bad, words in (
        (final.replace("state=", "state=x"), "does not belong"),
        ("https://thirdparty.invalid/elsewhere?code=abc&state=x", "not the redirect URL"),
        (f"{THIRD_PARTY}?error=access_denied&state=someone-elses", "does not belong"),  # not this sign-in's Deny
    ):
        with pytest.raises(CallbackError, match=words):
            flow.submit_redirect_url(bad)
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(token=flow.wait()))
    waiter.start()
    flow.submit_redirect_url(final)
    waiter.join(20)
    assert result["token"].access_token == sb.issued[-1]["access_token"]


def test_this_sign_ins_own_deny_ends_it(flow: LoginFlow) -> None:
    url = flow.start()
    flow.submit_redirect_url(ScriptedUser().consent(url, allow=False))
    with pytest.raises(AccessDeniedError):
        flow.wait()


def test_cancel_ends_the_wait(flow: LoginFlow) -> None:
    flow.start()
    threading.Timer(0.2, flow.cancel).start()
    with pytest.raises(LoginCancelledError):
        flow.wait()


# -- what the consent window stops ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "caught"),
    [
        (f"{THIRD_PARTY}?code=abc&state=s", True),
        ("https://THIRDPARTY.invalid:443/auth/callback?code=abc", True),  # the engine may spell it so
        ("https://thirdparty.invalid./auth/%63allback?code=abc", True),
        ("https://thirdparty.invalid/auth/callback", True),
        ("https://thirdparty.invalid/auth/callback/", False),
        ("https://thirdparty.invalid/auth/other?code=abc", False),
        ("http://thirdparty.invalid/auth/callback?code=abc", False),  # another scheme: another URI
        ("https://thirdparty.invalid:8443/auth/callback?code=abc", False),
        ("https://sub.thirdparty.invalid/auth/callback?code=abc", False),
        ("https://thirdparty.invalid:99999/auth/callback?code=abc", True),  # unreadable: stopped to be safe
        ("https://[thirdparty/auth/callback?code=abc", True),
        ("data:text/html,<p>hi", False),
        ("about:blank", False),
    ],
)
def test_what_counts_as_the_redirect(url: str, caught: bool) -> None:
    assert RedirectTarget.of(THIRD_PARTY).matches(url) is caught
