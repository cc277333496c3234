"""A profile: one Zephr site, OAuth client, scopes and redirect URI, and the rules for its fields.

``Profile`` is the validated, frozen record the rest of the app works with; ``Profile.create``,
``validate_profile`` and ``with_changes`` are the only ways in, and each field is checked here
(names, client IDs, scopes, switches and formats; URLs by ``urls``). Reading and writing
``profiles.toml`` is ``config``'s business. Only the standard library is imported at module
level, so the CLI's full ``token`` path stays light.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import ConfigError
from .urls import (
    DEFAULT_AUTHORIZE_PATH,
    DEFAULT_REDIRECT_URI,
    DEFAULT_TOKEN_URL,
    check_authorize_url,
    check_http_url,
    check_redirect_uri,
)

#: Zephr's scopes, offered and explained by both front ends; any RFC 6749 scope token is allowed.
SCOPES: dict[str, str] = {
    "user.account:read": "Read the account (email address, verification)",
    "user.profile:read": "Read the profile (public attributes)",
    "user.profile:update": "Update the profile",
}
DEFAULT_SCOPES: tuple[str, ...] = ("user.account:read", "user.profile:read")
TOKEN_FORMATS = ("json", "form")
CLIENT_AUTHS = ("basic", "body")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CLIENT_ID_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True)
class Profile:
    """One Zephr site, OAuth client and sign-in settings."""

    name: str
    site_url: str
    client_id: str
    token_url: str = DEFAULT_TOKEN_URL
    authorize_url: str | None = None  # None: {site_url}/zephr/oauth2
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    pkce: bool = True
    token_format: str = "json"
    client_auth: str = "basic"
    keep_site_session: bool = False
    ca_bundle: str | None = None
    insecure_skip_tls_verify: bool = False

    @classmethod
    def create(cls, **fields: Any) -> Profile:
        """Build a profile from loose values, normalising and validating each field."""
        return validate_profile(fields)

    def to_toml_table(self) -> dict[str, Any]:
        """The profile as it is written to ``profiles.toml`` (defaults included, None dropped)."""
        table = asdict(self)
        table.pop("name")
        table["scopes"] = list(self.scopes)
        return {k: v for k, v in table.items() if v is not None}

    @property
    def authorization_endpoint(self) -> str:
        """Where the sign-in starts: ``authorize_url``, else Zephr's ``{site_url}/zephr/oauth2``."""
        return self.authorize_url or self.site_url + DEFAULT_AUTHORIZE_PATH

    @property
    def issuer(self) -> dict[str, str]:
        """What this profile's tokens are bound to: a token issued for anything else is not its token."""
        return paths.issuer(self.site_url, self.token_url, self.client_id, self.authorization_endpoint)

    @property
    def tls_verify(self) -> bool | str:
        """What ``requests`` takes as ``verify=`` for this profile."""
        if self.insecure_skip_tls_verify:
            return False
        return self.ca_bundle or True


_FIELDS = {f.name for f in Profile.__dataclass_fields__.values()}
_BOOL_FIELDS = ("pkce", "keep_site_session", "insecure_skip_tls_verify")


def check_scopes(value: Any, profile: str | None = None, path: str | None = None) -> tuple[str, ...]:
    """Validate a list of scopes: RFC 6749 scope tokens, Zephr's or any other server's (duplicates dropped)."""
    if isinstance(value, str):
        value = [s for s in re.split(r"[,\s]+", value) if s]
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"must list at least one scope; Zephr's are {', '.join(SCOPES)}", path=path, profile=profile, field="scopes"
        )
    out: list[str] = []
    for scope in value:
        if not isinstance(scope, str) or not _SCOPE_TOKEN_RE.fullmatch(scope):
            shown = ascii(scope) if isinstance(scope, str) else f"a {type(scope).__name__}"
            raise ConfigError(
                f"{shown} is not a scope: a scope is one word of visible ASCII characters other than '\"' and "
                "'\\' (RFC 6749 section 3.3); list each scope separately",
                path=path,
                profile=profile,
                field="scopes",
            )
        if scope not in out:
            out.append(scope)
    return tuple(out)


def unknown_scope_warning(profile: Profile) -> str | None:
    """Words about scopes Zephr does not know, for a Zephr-mode (``token_format = "json"``) profile.

    Other servers have scopes of their own (``openid``, ``offline_access``...), so form-mode
    profiles get no warning; a Zephr site may refuse a scope it does not know (invalid_scope).
    """
    if profile.token_format != "json":
        return None
    unknown = [s for s in profile.scopes if s not in SCOPES]
    if not unknown:
        return None
    merged = any("," in s for s in unknown)
    return (
        f"Profile '{profile.name}' asks for {', '.join(repr(s) for s in unknown)}, which "
        f"{'is not one' if len(unknown) == 1 else 'are not'} of Zephr's scopes ({', '.join(SCOPES)}); "
        "a Zephr site may refuse the sign-in with invalid_scope. Kept as given"
        + (" (a comma inside a scope may be two scopes run together: give each one separately)." if merged else ".")
    )


def check_name(name: Any, path: str | None = None) -> str:
    """Validate a profile name (letters, digits, ``_ . -``; at most 64)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"profile name {name!r} is not valid: use letters, digits, '_', '.' or '-' (at most 64, "
            "starting with a letter or digit)",
            path=path,
        )
    return name


def validate_profile(fields: Mapping[str, Any], path: str | None = None) -> Profile:
    name = check_name(fields.get("name"), path)
    unknown = set(fields) - _FIELDS
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(
            f"unknown setting; known settings are {', '.join(sorted(_FIELDS - {'name'}))}",
            path=path,
            profile=name,
            field=bad,
        )
    values: dict[str, Any] = {"name": name}
    values["site_url"] = check_http_url(fields.get("site_url"), "site_url", name, path)
    token_url = fields.get("token_url") or DEFAULT_TOKEN_URL
    values["token_url"] = check_http_url(token_url, "token_url", name, path)
    if fields.get("authorize_url") not in (None, ""):
        authorize_url = check_authorize_url(fields["authorize_url"], name, path)
        # Zephr's own endpoint is kept as "the default", so it follows a later change of the site URL.
        if authorize_url != values["site_url"] + DEFAULT_AUTHORIZE_PATH:
            values["authorize_url"] = authorize_url
    values["client_id"] = _check_client_id(fields.get("client_id"), name, path)
    values["redirect_uri"] = check_redirect_uri(fields.get("redirect_uri") or DEFAULT_REDIRECT_URI, name, path)
    scopes = fields.get("scopes")
    values["scopes"] = DEFAULT_SCOPES if scopes is None else check_scopes(scopes, name, path)
    values.update(_check_options(fields, name, path))
    return Profile(**values)


def _check_client_id(client_id: Any, name: str, path: str | None) -> str:
    if not isinstance(client_id, str) or not _CLIENT_ID_RE.match(client_id):
        raise ConfigError(
            "must be the client ID from the site's Third Party Authentication screen "
            "(1-256 visible characters, no spaces)",
            path=path,
            profile=name,
            field="client_id",
        )
    return client_id


def _check_options(fields: Mapping[str, Any], name: str, path: str | None) -> dict[str, Any]:
    """The optional settings (switches, formats, CA bundle) that ``fields`` gives, checked."""
    values: dict[str, Any] = {}
    for key in _BOOL_FIELDS:
        if key in fields and fields[key] is not None:
            if not isinstance(fields[key], bool):
                raise ConfigError("must be true or false", path=path, profile=name, field=key)
            values[key] = fields[key]
    for key, allowed in (("token_format", TOKEN_FORMATS), ("client_auth", CLIENT_AUTHS)):
        if fields.get(key) is not None:
            if fields[key] not in allowed:
                raise ConfigError(
                    f"must be one of {', '.join(allowed)} (got {fields[key]!r})", path=path, profile=name, field=key
                )
            values[key] = fields[key]
    ca_bundle = fields.get("ca_bundle")
    if ca_bundle is not None:
        if not isinstance(ca_bundle, str) or not Path(ca_bundle).expanduser().is_file():
            raise ConfigError(
                f"CA bundle {ca_bundle!r} is not a readable file", path=path, profile=name, field="ca_bundle"
            )
        values["ca_bundle"] = str(Path(ca_bundle).expanduser())
    return values


def with_changes(profile: Profile, **changes: Any) -> Profile:
    """A validated copy of ``profile`` with some fields changed."""
    return validate_profile({**asdict(profile), **changes})
