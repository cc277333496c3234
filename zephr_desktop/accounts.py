"""The profile and token lifecycle both front ends share: add or change, remove, sign out, status.

One rule for when tokens are dropped, whoever changes a profile: only when its site URL,
client ID, token URL or authorize URL change (a token issued for another site or client would only
mislead). Any other change (scopes, redirect URI, the client secret) keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import Profiles, load_profiles, remove_profile, save_profile
from .errors import ConfigError
from .profile import Profile, with_changes
from .store import TokenStore


@dataclass(frozen=True)
class Saved:
    """What ``save`` did."""

    profile: Profile
    added: bool  # a new profile rather than a change to one
    signed_out: bool  # its tokens were dropped because where they came from changed


def issuer_changed(before: Profile | None, after: Profile) -> bool:
    """Whether tokens issued for ``before`` are meaningless for ``after`` (``Profile.issuer`` changed)."""
    return before is not None and before.issuer != after.issuer


def save(
    profile: Profile,
    *,
    store: TokenStore,
    client_secret: str | None = None,
    make_default: bool | None = None,
    path: Path | None = None,
) -> Saved:
    """Add or replace a profile, store its client secret if given, drop its tokens if the issuer changed."""
    before = load_profiles(path).profiles.get(profile.name)
    if client_secret:
        store.set_client_secret(profile.name, client_secret)
    # Tokens go before the new settings are written: a failure in between leaves a profile that
    # is signed out, never one whose new site is handed the old site's token.
    signed_out = issuer_changed(before, profile) and store.delete(profile.name)
    save_profile(profile, make_default=make_default, path=path)
    return Saved(profile, added=before is None, signed_out=signed_out)


def remove(name: str, *, store: TokenStore, path: Path | None = None) -> None:
    """Delete a profile with its tokens, kept site session and client secret."""
    load_profiles(path).get(name)  # an unknown name is an error before anything is deleted
    # Secrets first: if the secret store fails, the profile is still listed and the removal can be retried.
    store.delete(name)
    store.delete_client_secret(name)
    remove_profile(name, path)


def sign_out(name: str, *, store: TokenStore, forget_client_secret: bool = False) -> bool:
    """Forget a profile's tokens (and its client secret if asked); True if it had a token."""
    had = store.delete(name)
    if forget_client_secret:
        store.delete_client_secret(name)
    return had


def status(profile: Profile, store: TokenStore, now: float | None = None) -> dict[str, Any]:
    """User id, scopes, expiry and whether a refresh token is kept (what ``status --json`` prints); never a secret."""
    now = time.time() if now is None else now
    cached = store.load_cached(profile)  # the refresh token stays in the secret store
    info: dict[str, Any] = {"profile": profile.name, "site_url": profile.site_url, "signed_in": cached is not None}
    if cached is not None:
        token = cached.token
        left = token.seconds_left(now)
        info.update(
            user_id=token.user_id,
            scopes=list(token.scopes),
            token_type=token.token_type,
            expires_at=None
            if token.expires_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires_at)),
            expires_in=None if left is None else max(0, int(left)),
            expired=token.is_expired(now),
            refresh_available=cached.has_refresh,
        )
    return info


def profile_from_form(form: Mapping[str, Any], profiles: Profiles) -> Profile:
    """Validate the settings form: a new profile, or a change to ``form["original_name"]``.

    Raises ``ConfigError`` naming the field. A profile cannot be renamed, and a change keeps
    what the form does not show (authorize_url, pkce, token_format, client_auth, ca_bundle, ...).
    """
    original = form.get("original_name") or None
    name = _text(form, "name") or name_from_site(_text(form, "site_url"))
    fields = {
        "name": name,
        "site_url": _text(form, "site_url"),
        "client_id": _text(form, "client_id"),
        "redirect_uri": _text(form, "redirect_uri") or None,
        "token_url": _text(form, "token_url") or None,
        "scopes": list(form.get("scopes") or []),
        "keep_site_session": bool(form.get("keep_site_session")),
    }
    if original is None and name in profiles.profiles:
        raise ConfigError(f"A profile named '{name}' already exists.", field="name")
    if original is not None and original != name:
        raise ConfigError("A profile cannot be renamed; add a new one instead.", field="name")
    before = profiles.profiles.get(name) if original is not None else None
    try:
        return with_changes(before, **fields) if before is not None else Profile.create(**fields)
    except ConfigError as exc:
        if exc.field is None:  # only the name is checked without a field
            raise ConfigError(exc.detail, field="name") from None
        raise


def name_from_site(site_url: str) -> str:
    """A profile name made from a site URL's host (for a form that leaves the name empty)."""
    host = urlsplit(site_url.strip()).netloc or "zephr"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in host).strip("-.") or "zephr"
    return cleaned[:64]


def _text(form: Mapping[str, Any], key: str) -> str:
    return str(form.get(key) or "").strip()
