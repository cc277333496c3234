"""Adding a profile and signing in, once for every test, the GUI tests' harness and the benchmark: in
the test process (``add_profile``, ``sign_in``) or through the CLI (``cli_add_profile``, ``cli_login``),
and the CLI's failure contract.

Each in-process helper takes the app's config file and data dir where a caller keeps them elsewhere
(the GUI harness's app, a benchmark workspace); by default, the paths this process's environment names.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import requests

from support.cli import Result, call, finish, start
from support.user import ScriptedUser
from zephr_desktop.config import get_profile, save_profile
from zephr_desktop.login import LoginFlow
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile, with_changes
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox
from zephr_desktop.store import TokenStore

ANY_PORT_REDIRECT = "http://127.0.0.1:0/callback"  # the sandbox accepts any loopback port (RFC 8252 7.3)


def quiet_store(data_dir: Path | None = None) -> TokenStore:
    """The store the CLI uses (same XDG dirs, or ``data_dir``), without the file-fallback notice on stderr."""
    return TokenStore(directory=data_dir, notice=lambda _: None)


ANY_PORT = "http://127.0.0.1:0/callback"  # a loopback redirect URI on any free port (the sandbox allows it)


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
    """Save a profile for the sandbox and its client secret, as `profile add` does.

    ``config`` and ``data_dir``: another app's profiles.toml and data dir (a GUI test's app) instead of
    the ones this process's environment names.
    """
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


def cli_add_profile(
    env: dict[str, str],
    site: str,
    token_url: str,
    *extra: str,
    name: str = "demo",
    client_id: str = DEFAULT_CLIENT_ID,
    redirect_uri: str = ANY_PORT,
    secret: str | None = DEFAULT_CLIENT_SECRET,
    via: Callable[..., Result] = call,
) -> Result:
    """`zephr-desktop profile add`, the secret on stdin as a person would give it; it must succeed.

    ``via``: ``support.cli.call`` (in this process) or ``support.cli.run`` (a child process).
    """
    args = ["profile", "add", name, "--site", site, "--token-url", token_url, "--client-id", client_id]
    args += ["--redirect-uri", redirect_uri, *extra]
    if secret is not None:
        args.append("--client-secret-stdin")
    result = via(env, *args, stdin="" if secret is None else secret + "\n")
    assert result.code == 0, result.err
    return result


class Login(NamedTuple):
    """A finished `login --no-browser`: the command, the page the browser ended on, the URL it was given."""

    result: Result
    page: requests.Response
    url: str


def start_login(env: dict[str, str], *args: str, timeout: float = 20) -> tuple[subprocess.Popen[str], str]:
    """Start `zephr-desktop login --no-browser` (a child process: it waits); the process and the URL it printed."""
    proc = start(env, "login", "--no-browser", "--timeout", str(timeout), *args)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith(("http://", "https://")), f"login printed no URL: {url!r}"
    return proc, url


def cli_login(
    env: dict[str, str], *args: str, allow: bool = True, user: ScriptedUser | None = None, timeout: float = 20
) -> Login:
    """`zephr-desktop login --no-browser`, the scripted user answering the printed URL."""
    proc, url = start_login(env, *args, timeout=timeout)
    page = (user or ScriptedUser()).approve(url, allow=allow)
    return Login(finish(proc), page, url)


def stored_files(env: dict[str, str]) -> dict[str, bytes]:
    """Every file the app keeps in its data dir, by path (lock files aside): the stored token and secrets."""
    root = Path(env["XDG_DATA_HOME"])
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock"))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}
