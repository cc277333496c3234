"""The sandbox, profiles and a real first sign-in, shared by the figures that need a token."""

from __future__ import annotations

import http.client
import sys
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from zephr_desktop.config import Profile, save_profile
from zephr_desktop.login import LoginFlow
from zephr_desktop.oauth import Token
from zephr_desktop.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

from .env import REPO
from .stats import BenchError

SCOPES = ("user.account:read", "user.profile:read")
# Port 0: the listener takes any free port; the sandbox accepts any loopback port (RFC 8252 7.3).
ANY_PORT_REDIRECT = "http://127.0.0.1:0/callback"
FLOW_TIMEOUT = 30.0


class Dirs(Protocol):
    """Where a zephr-desktop child keeps its profiles and tokens (a Workspace, or the GUI harness's app)."""

    @property
    def config_path(self) -> Path: ...

    @property
    def data_dir(self) -> Path: ...


def scripted_user() -> Any:
    """The test suite's scripted user (tests/support/user.py): signs in and clicks Allow over HTTP."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from support.user import ScriptedUser

    return ScriptedUser()


def start_sandbox() -> Sandbox:
    """A sandbox on a free loopback port that accepts loopback redirect URIs on any port."""
    return Sandbox(settings=SandboxSettings(loopback_any_port=True)).start()


def store_for(ws: Dirs) -> TokenStore:
    """The children's token store, opened from this process (file secrets: no keyring here)."""
    return TokenStore(directory=ws.data_dir, notice=lambda _message: None)


def add_profile(ws: Dirs, sb: Sandbox, name: str, *, default: bool = False) -> Profile:
    """A profile pointing at the sandbox, saved where the children look, with its secret stored."""
    profile = Profile.create(
        name=name,
        site_url=sb.url,
        token_url=sb.token_url,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri=ANY_PORT_REDIRECT,
        scopes=list(SCOPES),
    )
    save_profile(profile, make_default=True if default else None, path=ws.config_path)
    store_for(ws).set_client_secret(name, DEFAULT_CLIENT_SECRET)
    return profile


def browser_get(url: str, timeout: float = 10.0) -> int:
    """GET a URL as a browser following a redirect would (plain http.client: no client-side extras)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def sign_in(ws: Dirs, profile: Profile, user: Any) -> Token:
    """A real sign-in against the sandbox (listener, consent, exchange), stored where the children look."""
    flow = LoginFlow(profile, DEFAULT_CLIENT_SECRET, store=store_for(ws), timeout=FLOW_TIMEOUT)
    url = flow.start()
    redirect = user.consent(url)
    browser = threading.Thread(target=browser_get, args=(redirect,), daemon=True)
    browser.start()
    try:
        token = flow.wait()
    except Exception as exc:
        raise BenchError(f"the setup sign-in for profile '{profile.name}' failed: {exc}") from exc
    finally:
        browser.join(FLOW_TIMEOUT)
    return token
