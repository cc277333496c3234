"""Profiles pointed at a sandbox and a whole sign-in in the test process: one copy for the tests, the GUI
tests' harness and the benchmark.

Each takes the app's config file and data dir where a caller keeps them elsewhere (the GUI harness's
app, a benchmark workspace); by default, the paths this process's environment points at.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from support.cli import Result, finish, run, start
from support.user import ScriptedUser
from zephr_desktop.config import Profile, get_profile, save_profile, with_changes
from zephr_desktop.login import LoginFlow
from zephr_desktop.oauth import Token
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox
from zephr_desktop.store import TokenStore

ANY_PORT_REDIRECT = "http://127.0.0.1:0/callback"  # the sandbox accepts any loopback port (RFC 8252 7.3)


def quiet_store(data_dir: Path | None = None) -> TokenStore:
    """The store the CLI uses (same XDG dirs, or ``data_dir``), without the file-fallback notice on stderr."""
    return TokenStore(directory=data_dir, notice=lambda _: None)


def add_profile(
    sb: Sandbox,
    name: str = "demo",
    *,
    secret: str | None = DEFAULT_CLIENT_SECRET,
    config_path: Path | None = None,
    data_dir: Path | None = None,
    make_default: bool | None = None,
    **fields: Any,
) -> Profile:
    """Save a profile for the sandbox (any free redirect port) and its client secret, as `profile add` does."""
    values: dict[str, Any] = {
        "site_url": sb.url,
        "token_url": sb.token_url,
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": ANY_PORT_REDIRECT,
        **fields,
    }
    profile = Profile.create(name=name, **values)
    save_profile(profile, make_default=make_default, path=config_path)
    if secret:
        quiet_store(data_dir).set_client_secret(name, secret)
    return profile


def stored_token(name: str = "demo") -> Token | None:
    """The token the CLI would use for the profile as profiles.toml now says it (with its refresh token)."""
    return quiet_store().load(get_profile(name))


def edit_keeping_sign_in(name: str = "demo", **changes: Any) -> Profile:
    """Edit a signed-in profile and keep its token, as if it had been issued for the edited profile.

    An edit of the site, token URL or client ID alone signs the profile out (tokens are bound to
    where they came from); this is for tests of what an endpoint does with a live refresh token.
    """
    store = quiet_store()
    before = get_profile(name)
    token = store.load(before)
    assert token is not None, f"profile '{name}' is not signed in"
    after = with_changes(before, **changes)
    save_profile(after)
    store.save(after, token)
    return after


def sign_in(
    profile: Profile, *, user: ScriptedUser | None = None, timeout: float = 20, data_dir: Path | None = None
) -> Token:
    """The whole sign-in in this process: LoginFlow, the scripted user's consent and redirect, the stored token."""
    store = quiet_store(data_dir)
    flow = LoginFlow(profile, store.get_client_secret(profile.name), store=store, timeout=timeout)
    url = flow.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(flow.wait)
        try:
            page = (user or ScriptedUser()).approve(url)
        except BaseException:
            flow.cancel()
            raise
        token = pending.result(timeout)
    assert page.status_code == 200 and "Signed in" in page.text, (page.status_code, page.text[:300])
    return token


def account_status(sb: Sandbox, access_token: str) -> int:
    """What the sandbox's /blaize/account answers to this access token (200: it is valid)."""
    resp = requests.get(
        f"{sb.url}/blaize/account",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
        verify=sb.cert_path or True,
    )
    return resp.status_code


def error_line(result: Result) -> str:
    """The failure contract: exit 1, exactly one `zephr-desktop: ...` line, no traceback. Returns the line."""
    assert result.code == 1, f"expected exit 1, got {result.code}; stderr:\n{result.err}"
    assert "Traceback" not in result.err, f"a traceback reached stderr:\n{result.err}"
    lines = [line for line in result.err.splitlines() if line.startswith("zephr-desktop: ")]
    assert len(lines) == 1, f"expected one `zephr-desktop: ...` line on stderr, got {len(lines)}:\n{result.err}"
    return lines[0]


def cli_add_profile(env: dict[str, str], sb: Sandbox, *extra: str, name: str = "demo",
                    secret: str = DEFAULT_CLIENT_SECRET) -> Result:
    """`zephr-desktop profile add` for the sandbox, the secret on stdin, as a person would."""
    result = run(env, "profile", "add", name, "--site", sb.url, "--token-url", sb.token_url, "--client-id",
                 DEFAULT_CLIENT_ID, "--redirect-uri", "http://127.0.0.1:0/callback", "--client-secret-stdin", *extra,
                 stdin=secret + "\n")
    assert result.code == 0, result.err
    return result


def cli_login(env: dict[str, str], *, user: ScriptedUser | None = None) -> tuple[Result, requests.Response]:
    """`zephr-desktop login --no-browser`, the scripted user answering the printed URL; (result, page)."""
    proc = start(env, "login", "--no-browser", "--timeout", "20")
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith(("http://", "https://")), f"login printed no URL: {url!r}"
    page = (user or ScriptedUser()).approve(url)
    return finish(proc), page
