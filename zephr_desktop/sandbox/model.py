"""Values of the sandbox: clients, settings, seeded users, scopes and fault names."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CLIENT_ID = "sandbox-client"
# Holds ':', '/', '+' and '=' on purpose: a client that form-urlencodes the Basic
# credentials (RFC 6749 2.3.1, Authlib's default) no longer matches, as against Zephr.
DEFAULT_CLIENT_SECRET = "sandbox-secret:with/odd+chars="
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_PASSWORD = "zephr-sandbox"

SCOPES: dict[str, str] = {
    "user.account:read": "See your account: email address and whether it is verified",
    "user.profile:read": "See your profile: your name and other details",
    "user.profile:update": "Change your profile details",
}

FAULTS: tuple[str, ...] = (
    "invalid_grant",
    "400_empty",
    "invalid_client",
    "401_html",
    "500",
    "502_html",
    "200_non_json",
    "200_no_access_token",
    "token_type_mac",
    "huge_body",
    "drop",
)

MODES: tuple[str, ...] = ("zephr", "rfc")

TEST_USERS: dict[str, dict[str, str]] = {
    "joe@example.com": {
        "password": DEFAULT_PASSWORD,
        "first_name": "Joe",
        "surname": "Blow",
        "user_id": "68c0f5ae-f857-408f-a9d6-f511df0f8ae8",
        "tracking_id": "3d1f6b2a-9c4e-4f0b-8a57-2e6c1d9b7f30",
    },
    "ada@example.com": {
        "password": DEFAULT_PASSWORD,
        "first_name": "Ada",
        "surname": "Lovelace",
        "user_id": "b2e4c6a8-1d3f-4e5a-9b7c-0f2e4d6a8c1b",
        "tracking_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    },
}

LOOPBACK_NAMES = ("localhost",)
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (brackets allowed)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_is_ours(value: str, port: int, default_port: int) -> bool:
    """Whether a Host header names this sandbox: a loopback name or address, and its port.

    Any other name is refused: a page on a domain its owner points at 127.0.0.1 (DNS
    rebinding) must not reach the sandbox with the browser's blessing as same-origin.
    """
    match = _HOST_HEADER.fullmatch(value.strip())
    if match is None:
        return False
    name, given = match[1], int(match[2]) if match[2] else default_port
    return given == port and is_loopback_host(name)


def check_redirect_uri(uri: str) -> None:
    """Raise ValueError unless uri is an absolute http(s) URI without a fragment (RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URI")
    if parts.fragment or uri.endswith("#"):
        raise ValueError(f"redirect URI {uri!r} must not contain a fragment")


@dataclass(frozen=True)
class Client:
    """An OAuth client registered with the sandbox (client_secret None: a public client)."""

    client_id: str
    client_secret: str | None
    redirect_uris: Sequence[str]
    name: str = "Third-party app"

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        uris = tuple(self.redirect_uris)
        if not uris:
            raise ValueError(f"client {self.client_id!r} needs at least one redirect URI")
        for uri in uris:
            check_redirect_uri(uri)
        # Frozen: normalise a caller's list into a tuple so the value stays immutable.
        object.__setattr__(self, "redirect_uris", uris)


DEFAULT_CLIENT = Client(
    client_id=DEFAULT_CLIENT_ID,
    client_secret=DEFAULT_CLIENT_SECRET,
    redirect_uris=(DEFAULT_REDIRECT_URI,),
    name="Zephr Desktop (sandbox)",
)


def _check_setting(name: str, value: Any) -> None:
    """Raise ValueError for a setting value the sandbox cannot honour."""
    if name == "fault" and value is not None and value not in FAULTS:
        raise ValueError(f"unknown fault {value!r}; choose one of {', '.join(FAULTS)}")
    if name == "mode" and value not in MODES:
        raise ValueError(f"unknown mode {value!r}; choose 'zephr' or 'rfc'")
    if name == "expires_in" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"expires_in must be a non-negative int, not {value!r}")
    if name in ("code_lifetime", "delay") and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
    ):
        raise ValueError(f"{name} must be a non-negative number, not {value!r}")


@dataclass
class SandboxSettings:
    """Behaviour switches; mutable so tests can flip them between requests."""

    expires_in: int = 3600
    code_lifetime: float = 60.0
    rotate_refresh_tokens: bool = False
    refresh_returns_refresh_token: bool = False
    mode: str = "zephr"
    fault: str | None = None
    delay: float = 0.0
    auto_deny: bool = False
    loopback_any_port: bool = False

    def __setattr__(self, name: str, value: Any) -> None:
        # Validated on every assignment, so a typo like fault="502" fails at once, not mid-test.
        _check_setting(name, value)
        super().__setattr__(name, value)
