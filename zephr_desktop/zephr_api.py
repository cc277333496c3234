"""Zephr's Public API, called with the user's access token (the "second API call")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import ApiError, ZephrError
from .oauth import Token, is_zephr
from .profile import Profile
from .transport import Endpoint, http_timeout, limit_size, send, tls_verify

if TYPE_CHECKING:
    import requests


def _site(profile: Profile) -> str:
    """How messages name the site: its host, and (for a Zephr-mode profile) that it is a Zephr site."""
    host = urlsplit(profile.site_url).hostname or profile.site_url
    return f"this Zephr site ({host})" if is_zephr(profile) else f"this site ({host})"


def _refusal(profile: Profile, method: str, path: str, status: int) -> ApiError | None:
    """The error for a status that is not an answer, with its fix (None for 2xx/3xx)."""
    site = _site(profile)
    if status == 401:
        return ApiError(
            f"{method} {path} on {site} refused the token (401): it has expired or was revoked. "
            "Run `zephr-desktop refresh`, or sign in again.",
            status=401,
        )
    if status == 403:
        return ApiError(
            f"{method} {path} on {site} needs a scope this token was not granted (403). Add it to the "
            "profile's scopes and sign in again.",
            status=403,
        )
    if status == 404 and path == "/blaize/account":
        return ApiError(
            f"The signed-in user has no account on {site}: GET /blaize/account answered 404. Sign in as a user "
            "of this site, or check the profile's site URL.",
            status=404,
        )
    if status >= 400:
        return ApiError(f"{method} {path} on {site} failed with HTTP {status}.", status=status)
    return None


def _request(profile: Profile, token: Token, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import requests

    url = f"{profile.site_url}{path}"
    headers = {"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"}
    timeout, verify = http_timeout(), tls_verify(profile.tls_verify, profile.name)
    endpoint = Endpoint(url, "the site's Public API", "site URL")

    def too_big(resp: requests.Response) -> ZephrError:
        return ApiError(
            f"{method} {path} on {_site(profile)} answered with over 1 MB of data.",
            status=resp.status_code,
        )

    with requests.Session() as session:
        limit_size(session, too_big)
        resp = send(
            lambda: session.request(method, url, headers=headers, json=body, timeout=timeout, verify=verify),
            endpoint,
            timeout,
        )
    refusal = _refusal(profile, method, path, resp.status_code)
    if refusal is not None:
        raise refusal
    try:
        return json.loads(resp.content)
    except ValueError as exc:
        raise ApiError(
            f"{method} {path} on {_site(profile)} answered {resp.status_code} with something that is not JSON."
        ) from exc


def get_account(profile: Profile, token: Token) -> Any:
    """``GET /blaize/account``: the user's core account (needs ``user.account:read``)."""
    return _request(profile, token, "GET", "/blaize/account")


def get_profile(profile: Profile, token: Token) -> Any:
    """``GET /blaize/profile``: the user's public attributes (needs ``user.profile:read``)."""
    return _request(profile, token, "GET", "/blaize/profile")
