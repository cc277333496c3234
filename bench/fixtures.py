"""The sandbox, profiles and a real first sign-in, shared by the figures that need a token.

Profiles and sign-ins are the test suite's own helpers (``tests/support/signin.py``), given the
directories of the children measured: one copy for the tests, the GUI tests and the benchmark.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from support import signin
from support.user import ScriptedUser

from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.sandbox import Sandbox, SandboxSettings
from zephr_desktop.store import TokenStore

from .stats import BenchError

SCOPES = ("user.account:read", "user.profile:read")
FLOW_TIMEOUT = 30.0


class Dirs(Protocol):
    """Where a zephr-desktop child keeps its profiles and tokens (a Workspace, or the GUI harness's app)."""

    @property
    def config_path(self) -> Path: ...

    @property
    def data_dir(self) -> Path: ...


def scripted_user() -> ScriptedUser:
    """The test suite's scripted user: signs in and clicks Allow over HTTP."""
    return ScriptedUser()


def start_sandbox(settings: SandboxSettings | None = None) -> Sandbox:
    """A sandbox on a free loopback port that accepts loopback redirect URIs on any port."""
    settings = settings or SandboxSettings()
    settings.loopback_any_port = True
    return Sandbox(settings=settings).start()


def store_for(ws: Dirs) -> TokenStore:
    """The children's token store, opened from this process (file secrets: no keyring here)."""
    return signin.quiet_store(ws.data_dir)


def add_profile(ws: Dirs, sb: Sandbox, name: str, *, default: bool = False) -> Profile:
    """A profile pointing at the sandbox, saved where the children look, with its secret stored."""
    return signin.add_profile(
        sb,
        name,
        config_path=ws.config_path,
        data_dir=ws.data_dir,
        make_default=True if default else None,
        scopes=list(SCOPES),
    )


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


def sign_in(ws: Dirs, profile: Profile, user: ScriptedUser | None = None) -> Token:
    """A real sign-in against the sandbox (listener, consent, exchange), stored where the children look."""
    try:
        return signin.sign_in(profile, user=user, timeout=FLOW_TIMEOUT, data_dir=ws.data_dir)
    except Exception as exc:
        raise BenchError(f"the setup sign-in for profile '{profile.name}' failed: {exc}") from exc
