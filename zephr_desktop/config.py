"""Profiles: one Zephr site + client + scopes + redirect URI each, kept in ``profiles.toml``.

The file lives in the platformdirs config dir (``paths.config_file``). The client secret is
never in it (see ``store``). Only the standard library and platformdirs are imported at module
level, so the CLI's full ``token`` path (taken whenever the fast path in ``fasttoken`` cannot be)
stays light.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from . import fileutil, paths
from .errors import ConfigError, ProfileNotFoundError

log = logging.getLogger(__name__)

DEFAULT_TOKEN_URL = "https://console.zephr.com/zephr/oauth2/token"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
#: Zephr's authorize endpoint, under the site URL; a profile's ``authorize_url`` replaces it.
DEFAULT_AUTHORIZE_PATH = "/zephr/oauth2"
#: Zephr's scopes, offered and explained by both front ends; any RFC 6749 scope token is allowed.
SCOPES: dict[str, str] = {
    "user.account:read": "Read the account (email address, verification)",
    "user.profile:read": "Read the profile (public attributes)",
    "user.profile:update": "Update the profile",
}
DEFAULT_SCOPES: tuple[str, ...] = ("user.account:read", "user.profile:read")
TOKEN_FORMATS = ("json", "form")
CLIENT_AUTHS = ("basic", "body")
LOOPBACK_NAMES = ("localhost",)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CLIENT_ID_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
# RFC 3986 section 2: unreserved, reserved and "%" (which must start a %XX escape).
_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# The parameters the app puts on the authorize URL: an authorize_url may not carry them itself.
_AUTHORIZE_PARAMS = frozenset(
    ("client_id", "response_type", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method")
)
# The profiles.toml format this release writes (`schema = 1`; files from before the key are 0).
# An older valid file is upgraded in place, atomically, keeping a copy as profiles.toml.bak-<old>;
# a file from a newer release is refused and left exactly as it is.
SCHEMA_VERSION = 1


def is_loopback_host(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        return _validate(fields)

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


def _check_uri_chars(value: str, field_name: str, profile: str | None, path: str | None) -> None:
    """Refuse characters RFC 3986 does not allow in a URI (spaces, quotes, control and non-ASCII ones).

    URLs end up in places where such characters change the meaning (a shell command, a header line,
    a terminal), so the file and the forms only accept what a URL may hold.
    """
    bad = sorted({c for c in value if c not in _URI_CHARS})
    if bad:
        shown = " ".join(ascii(c) for c in bad)
        raise ConfigError(
            f"{value!a} contains characters a URL may not hold ({shown}); percent-encode them "
            "(e.g. %20 for a space) and write international domain names in their xn-- form (RFC 3986)",
            path=path,
            profile=profile,
            field=field_name,
        )
    if _BAD_PERCENT_RE.search(value):
        raise ConfigError(
            f"{value!a} has a '%' that does not start a %XX escape (RFC 3986); write a literal '%' as %25",
            path=path,
            profile=profile,
            field=field_name,
        )


def _check_http_url(value: Any, field_name: str, profile: str | None, path: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "must be a URL such as https://news.example.com", path=path, profile=profile, field=field_name
        )
    _check_uri_chars(value.strip(), field_name, profile, path)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"'{value}' is not an http(s) URL; use e.g. https://news.example.com",
            path=path,
            profile=profile,
            field=field_name,
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"'{value}' must use https (plain http is only allowed for localhost)",
            path=path,
            profile=profile,
            field=field_name,
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"'{value}' must not carry a query, fragment or credentials",
            path=path,
            profile=profile,
            field=field_name,
        )
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def _check_authorize_url(value: Any, profile: str | None, path: str | None) -> str:
    """An authorize endpoint: an http(s) URL like the others, whose own query (RFC 6749 3.1) is kept."""
    if not isinstance(value, str):
        return _check_http_url(value, "authorize_url", profile, path)
    base, has_query, query = value.strip().partition("?")
    checked = _check_http_url(base, "authorize_url", profile, path)
    if not has_query or not query:
        return checked
    _check_uri_chars(query, "authorize_url", profile, path)
    clash = sorted({key for key, _ in parse_qsl(query, keep_blank_values=True)} & _AUTHORIZE_PARAMS)
    if "#" in query or clash:
        raise ConfigError(
            f"'{value.strip()}' must not carry a fragment or the sign-in's own parameters ({', '.join(clash)}); "
            "give the endpoint's address only",
            path=path,
            profile=profile,
            field="authorize_url",
        )
    return f"{checked}?{query}"


def check_endpoint_url(value: Any, field_name: str) -> str:
    """Validate a URL found elsewhere (an issuer, discovery metadata) as the profile's ``field_name`` would be."""
    if field_name == "authorize_url":
        return _check_authorize_url(value, None, None)
    return _check_http_url(value, field_name, None, None)


def check_redirect_uri(
    value: Any, profile: str | None = None, path: str | None = None, *, listener: bool = False
) -> str:
    """The one check of a redirect URI, also run by the listener; returns it as written, trimmed.

    Either the app's own loopback listener (http, host 127.0.0.1, localhost or [::1], an
    explicit port, 0 meaning any free one), or any https URI registered for the client, whose
    redirect the app's window catches before it is sent (``listener=True`` accepts only the
    first kind). RFC 3986 characters only, no user info or fragment; a query is allowed
    (RFC 6749 3.1.2). Nothing is normalised: the server compares redirect URIs exactly.
    """
    uri = value.strip() if isinstance(value, str) else ""
    if uri:
        _check_uri_chars(uri, "redirect_uri", profile, path)
    problem = _redirect_uri_problem(uri, listener=listener)
    if problem:
        examples = DEFAULT_REDIRECT_URI if listener else f"{DEFAULT_REDIRECT_URI} or https://app.example.com/callback"
        raise ConfigError(
            f"'{uri if isinstance(value, str) else value}' {problem}; use one such as {examples}",
            path=path,
            profile=profile,
            field="redirect_uri",
        )
    return uri


def listens_on_loopback(redirect_uri: str) -> bool:
    """True when the app's loopback listener receives this (valid) redirect URI; False when its window catches it."""
    return urlsplit(redirect_uri).scheme == "http"


def how_redirect_is_received(redirect_uri: str) -> str:
    """One sentence for the person: how the app gets the redirect to this (valid) URI."""
    if listens_on_loopback(redirect_uri):
        return f"The app listens for the redirect to {redirect_uri} on this computer."
    return (
        f"The app's window catches the redirect to {redirect_uri} before it is sent (the code never reaches "
        "that site); with the command line, paste the final URL from the browser's address bar."
    )


def _redirect_uri_problem(uri: str, *, listener: bool) -> str | None:
    """What makes ``uri`` (RFC 3986 characters only) unusable as a redirect URI, or None."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "is not a valid URL (is the port a number between 0 and 65535?)"
    if "@" in parts.netloc:
        return "must not contain a user name or password"
    if "#" in uri:
        return "must not contain a #fragment"
    if parts.scheme == "https" and not listener:
        if not parts.hostname:
            return "needs a host name"
        if port == 0:
            return "may only use port 0 (any free port) with the app's own http listener on 127.0.0.1"
        return None
    if parts.scheme != "http":
        if listener:
            return "must start with http:// (the app listens on this machine, without TLS)"
        return "must start with https:// (or http:// for the app's own listener on 127.0.0.1, localhost or [::1])"
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        if listener:
            return "must point at 127.0.0.1, localhost or [::1] (the app's own listener, never 0.0.0.0)"
        return (
            "must point at 127.0.0.1, localhost or [::1] (the app's own listener, never 0.0.0.0); "
            "a redirect URI on another host must use https"
        )
    if port is None:
        return "needs a port between 0 and 65535"
    return None


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


def _validate(fields: Mapping[str, Any], path: str | None = None) -> Profile:
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
    values["site_url"] = _check_http_url(fields.get("site_url"), "site_url", name, path)
    token_url = fields.get("token_url") or DEFAULT_TOKEN_URL
    values["token_url"] = _check_http_url(token_url, "token_url", name, path)
    if fields.get("authorize_url") not in (None, ""):
        authorize_url = _check_authorize_url(fields["authorize_url"], name, path)
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


@dataclass(frozen=True)
class Profiles:
    """Everything in ``profiles.toml``: the profiles by name and the selected one."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    default: str | None = None

    def get(self, name: str | None = None) -> Profile:
        """The named profile, else the default one, else the only one."""
        if name is None:
            name = self.default
            if name is None and len(self.profiles) == 1:
                name = next(iter(self.profiles))
        if name is None:
            if not self.profiles:
                raise ProfileNotFoundError(
                    "No profile yet. Add one with `zephr-desktop profile add NAME --site URL --client-id ID` "
                    "(or try `zephr-desktop --demo`)."
                )
            raise ProfileNotFoundError(
                f"Several profiles ({', '.join(sorted(self.profiles))}) and none selected. "
                "Pass --profile NAME or run `zephr-desktop profile use NAME`."
            )
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ProfileNotFoundError(
                f"No profile named '{name}' (known: {known}). Add it with `zephr-desktop profile add {name} ...`."
            ) from None


def load_profiles(path: Path | None = None) -> Profiles:
    """Read and validate ``profiles.toml``; a missing file means no profiles.

    A valid file in an older format is upgraded in place first (see ``_upgrade``); a file
    from a newer release is refused and never rewritten.
    """
    path = path or paths.config_file()
    fileutil.check_private(path.parent, path)  # another user's edit could send the tokens and secret elsewhere
    raw = _read_file(path)
    if raw is None:
        return Profiles()
    data = _decode(raw, path)
    schema = _schema(data, str(path))
    profiles = _parse(data, str(path))  # only a file that validates is upgraded
    if schema < SCHEMA_VERSION:
        _upgrade(path, raw, schema, profiles)
    return profiles


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot be read ({exc.strerror})", path=str(path)) from exc


def _decode(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"is not valid TOML ({exc}); fix or delete the file", path=str(path)) from exc


def _schema(data: dict[str, Any], path: str) -> int:
    """The file's format version (0 before the key existed); a newer one than this release reads is refused."""
    value = data.get("schema", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < ("schema" in data):
        raise ConfigError(
            f"must be the file format's version, a whole number such as {SCHEMA_VERSION} (got {value!r})",
            path=path,
            field="schema",
        )
    if value > SCHEMA_VERSION:
        raise ConfigError(
            f"written by a newer zephr-desktop (schema {value}); upgrade the app (this one reads schema "
            f"{SCHEMA_VERSION} and older). The file was left as it is.",
            path=path,
        )
    return value


def _to_schema_1(raw: bytes) -> bytes:
    # Schema 1 only adds the version key; a top-level key may open any TOML document, and
    # everything the person wrote (comments, order, spacing) stays as it was.
    return b"schema = 1\n" + raw


_UPGRADES = {0: _to_schema_1}  # from schema N to N + 1, on the file's bytes


def backup_path(path: Path, schema: int, raw: bytes) -> Path:
    """Where the copy of a schema-``schema`` file goes before it is upgraded.

    ``profiles.toml.bak-<schema>``, or ``.bak-<schema>.<n>`` when an earlier, different copy
    holds that name; an existing copy of exactly these bytes is reused.
    """
    candidate = path.with_name(f"{path.name}.bak-{schema}")
    n = 1
    while candidate.exists():
        with contextlib.suppress(OSError):
            if candidate.read_bytes() == raw:
                return candidate
        candidate = path.with_name(f"{path.name}.bak-{schema}.{n}")
        n += 1
    return candidate


def _upgrade(path: Path, raw: bytes, schema: int, profiles: Profiles) -> None:
    """Rewrite an older file in the current format: a backup first, then one atomic replace."""
    new = raw
    for version in range(schema, SCHEMA_VERSION):
        new = _UPGRADES[version](new)
    if _parse(_decode(new, path), str(path)) != profiles:  # never write a file that means something else
        log.warning("not upgrading %s: the upgraded file would not read back the same", path)
        return
    try:
        backup = backup_path(path, schema, raw)
        if not backup.exists():
            fileutil.atomic_write(backup, raw)
        if _read_file(path) != raw:
            return  # changed meanwhile (another process upgraded or saved it): leave that alone
        fileutil.atomic_write(path, new)
    except OSError as exc:
        # The profiles were read; only the upgrade could not be written. Try again next time.
        log.warning(
            "could not upgrade %s to schema %d (%s); it still works as it is", path, SCHEMA_VERSION, exc.strerror or exc
        )
        return
    log.info("upgraded %s to schema %d; the old file is kept as %s", path, SCHEMA_VERSION, backup)


def _parse(data: dict[str, Any], path: str) -> Profiles:
    unknown = set(data) - {"schema", "default", "profiles"}
    if unknown:
        raise ConfigError(
            f'unknown top-level key; the file holds `schema = {SCHEMA_VERSION}`, `default = "NAME"` and '
            "[profiles.NAME] tables",
            path=path,
            field=sorted(unknown)[0],
        )
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError("must be a table of [profiles.NAME] tables", path=path, field="profiles")
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError("must be a table", path=path, profile=name)
        profiles[name] = _validate({**table, "name": name}, path)
    default = data.get("default")
    if default is not None and (not isinstance(default, str) or default not in profiles):
        raise ConfigError(
            f"names profile {default!r}, which does not exist; run `zephr-desktop profile use NAME`",
            path=path,
            field="default",
        )
    return Profiles(profiles, default)


def _refuse_newer(path: Path) -> None:
    """Raise the newer-release error if ``path`` holds a file from a newer release (it is never replaced)."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # nothing readable to protect; callers load and validate the file before saving
    version = data.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        _schema(data, str(path))


def save_profiles(profiles: Profiles, path: Path | None = None) -> None:
    """Write ``profiles.toml`` atomically (0600, directory 0700)."""
    import tomli_w

    path = path or paths.config_file()
    _refuse_newer(path)
    doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
    if profiles.default:
        doc["default"] = profiles.default
    doc["profiles"] = {name: p.to_toml_table() for name, p in sorted(profiles.profiles.items())}
    fileutil.atomic_write(path, tomli_w.dumps(doc).encode("utf-8"))


def save_profile(profile: Profile, *, make_default: bool | None = None, path: Path | None = None) -> Profiles:
    """Add or replace one profile; it becomes the default if asked or if it is the first."""
    current = load_profiles(path)
    profiles = {**current.profiles, profile.name: profile}
    default = current.default
    if make_default or (make_default is None and default is None):
        default = profile.name
    updated = Profiles(profiles, default)
    save_profiles(updated, path)
    return updated


def remove_profile(name: str, path: Path | None = None) -> Profiles:
    """Delete one profile from the file (its tokens are the store's business)."""
    current = load_profiles(path)
    current.get(name)
    profiles = {k: v for k, v in current.profiles.items() if k != name}
    default = current.default if current.default != name else None
    updated = Profiles(profiles, default)
    save_profiles(updated, path)
    return updated


def set_default(name: str, path: Path | None = None) -> Profiles:
    """Select the profile used when none is named."""
    current = load_profiles(path)
    current.get(name)
    updated = Profiles(current.profiles, name)
    save_profiles(updated, path)
    return updated


def get_profile(name: str | None = None, path: Path | None = None) -> Profile:
    """Load the file and return the named (or default) profile."""
    return load_profiles(path).get(name)


def with_changes(profile: Profile, **changes: Any) -> Profile:
    """A validated copy of ``profile`` with some fields changed."""
    return _validate({**asdict(profile), **changes})
