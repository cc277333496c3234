"""Zephr's Public API, called with the user's access token (the "second API call")."""

from __future__ import annotations

import json
from typing import Any

from .config import Profile
from .errors import ApiError, NetworkError
from .oauth import Token, http_timeout, tls_verify


def _request(profile: Profile, token: Token, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import requests

    url = f"{profile.site_url}{path}"
    headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
    timeout, verify = http_timeout(), tls_verify(profile)
    try:
        resp = requests.request(method, url, headers=headers, json=body, timeout=timeout, verify=verify)
    except requests.exceptions.SSLError as exc:
        raise NetworkError(
            f"TLS verification failed for {url}. If the site uses a private CA, set ca_bundle in the profile."
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise NetworkError(f"Cannot reach {url} ({type(exc).__name__}). Check the site URL and your network.") from exc
    if resp.status_code == 401:
        raise ApiError(
            f"{method} {path} refused the token (401): it has expired or was revoked. "
            "Run `zephr-desktop refresh`, or sign in again.",
            status=401,
        )
    if resp.status_code == 403:
        raise ApiError(
            f"{method} {path} needs a scope this token was not granted (403). Add it to the profile's "
            "scopes and sign in again.",
            status=403,
        )
    if resp.status_code == 404 and path == "/blaize/account":
        raise ApiError("The signed-in user has no account on this site (404).", status=404)
    if resp.status_code >= 400:
        raise ApiError(f"{method} {path} failed with HTTP {resp.status_code}.", status=resp.status_code)
    try:
        return json.loads(resp.content)
    except ValueError as exc:
        raise ApiError(f"{method} {path} answered {resp.status_code} with something that is not JSON.") from exc


def get_account(profile: Profile, token: Token) -> Any:
    """``GET /blaize/account``: the user's core account (needs ``user.account:read``)."""
    return _request(profile, token, "GET", "/blaize/account")


def get_profile(profile: Profile, token: Token) -> Any:
    """``GET /blaize/profile``: the user's public attributes (needs ``user.profile:read``)."""
    return _request(profile, token, "GET", "/blaize/profile")
