"""An authorization server's endpoints from its issuer URL (RFC 8414 metadata, or OpenID Connect Discovery).

``profile add NAME --issuer URL`` reads the metadata once and writes what it found into the
profile (``authorize_url``, ``token_url``, and how to authenticate the client); nothing is
fetched again at sign-in. The metadata is used only when its ``issuer`` is exactly the URL
the person gave (RFC 8414 section 3.3), so a server cannot hand out another server's endpoints.

``http_get`` is the plain GET that this module and ``check`` share: no redirects followed,
the app's timeouts and TLS settings, a cap on what is read, and one message per way the
network can fail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError, DiscoveryError
from .urls import check_endpoint_url

log = logging.getLogger(__name__)

#: What is read of a metadata document at most; real ones are a few kilobytes.
MAX_METADATA = 256 * 1024
RFC8414_PATH = "/.well-known/oauth-authorization-server"
OPENID_PATH = "/.well-known/openid-configuration"
#: RFC 8414 section 2: when the metadata omits token_endpoint_auth_methods_supported.
DEFAULT_AUTH_METHODS = ("client_secret_basic",)
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as read by ``http_get``: status, headers (lower-case names), the body up to the cap."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    truncated: bool = False  # the body was longer than the cap, and only the cap was read

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class Fetch(Protocol):
    """A GET as ``http_get`` does it (tests pass fakes): raises ``NetworkError`` when nothing answers."""

    def __call__(self, url: str, *, name: str, setting: str) -> Answer:
        """GET ``url``; ``name`` says what it is ("the site") and ``setting`` which profile field holds it."""


def http_get(
    url: str,
    *,
    name: str,
    setting: str,
    verify: bool | str = True,
    limit: int = MAX_METADATA,
    accept: str = "application/json",
) -> Answer:
    """GET ``url`` without following redirects, reading at most ``limit`` bytes of the body."""
    import requests

    from .transport import Endpoint, http_timeout, network_error

    timeout = http_timeout()
    try:
        with requests.get(
            url, headers={"Accept": accept}, timeout=timeout, verify=verify, allow_redirects=False, stream=True
        ) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                return Answer(url, resp.status_code, headers, b"", truncated=True)
            body = bytearray()
            for chunk in resp.iter_content(_CHUNK):
                body += chunk
                if len(body) > limit:
                    return Answer(url, resp.status_code, headers, bytes(body[:limit]), truncated=True)
            return Answer(url, resp.status_code, headers, bytes(body))
    except requests.exceptions.RequestException as exc:
        raise network_error(exc, Endpoint(url, name, setting), timeout) from exc


# -- the metadata ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metadata:
    """What the app uses of an authorization server's metadata."""

    issuer: str
    source: str  # the URL it was read from
    authorization_endpoint: str | None
    token_endpoint: str | None
    token_endpoint_auth_methods: tuple[str, ...] = DEFAULT_AUTH_METHODS


@dataclass(frozen=True)
class Settings:
    """Profile fields found through discovery, and one line for the person on how each was chosen."""

    fields: dict[str, str]
    notes: tuple[str, ...]


def check_issuer(issuer: str) -> str:
    """The issuer URL as given (trimmed), after checking it: https except loopback, no query or fragment."""
    try:
        check_endpoint_url(issuer, "issuer")
    except ConfigError as exc:
        raise DiscoveryError(f"--issuer: {exc.detail}") from None
    return issuer.strip()


def well_known_urls(issuer: str) -> list[str]:
    """Where the metadata may be: RFC 8414's inserted path first, then OpenID Connect's appended one."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, RFC8414_PATH + path, "", ""))
    openid = issuer.rstrip("/") + OPENID_PATH
    return list(dict.fromkeys((rfc8414, openid)))


def discover(issuer: str, *, fetch: Fetch | None = None, verify: bool | str = True) -> Metadata:
    """Read the issuer's metadata from its well-known URLs (the first usable one wins)."""
    from .oauth import server_text

    issuer = check_issuer(issuer)
    if fetch is None:

        def fetch(url: str, *, name: str, setting: str) -> Answer:
            return http_get(url, name=name, setting=setting, verify=verify)

    tried: list[str] = []
    for url in well_known_urls(issuer):
        # Nothing answering is final: both URLs are on the issuer's host.
        answer = fetch(url, name="the issuer's metadata", setting="issuer URL")
        problem = _unusable(answer)
        if problem is not None:
            tried.append(f"{url} {problem}")
            continue
        data = json.loads(answer.body)
        given = data.get("issuer")
        if given != issuer:
            named = f"issuer '{server_text(given, 120)}'" if isinstance(given, str) else "no issuer"
            hint = (
                f" If that is the server you mean, run again with --issuer {server_text(given, 120)}"
                if (isinstance(given, str) and given.startswith(("https://", "http://")))
                else ""
            )
            raise DiscoveryError(
                f"The metadata at {url} names {named}, not '{issuer}'; RFC 8414 (section 3.3) says such metadata "
                f"must not be used, so nothing was saved.{hint}"
            )
        if isinstance(data.get("response_types_supported"), list) and "code" not in data["response_types_supported"]:
            raise DiscoveryError(
                f"The server {issuer} does not offer the authorization-code flow (its metadata at {url} lists "
                "no 'code' in response_types_supported), which is the only one this app uses."
            )
        methods = data.get("token_endpoint_auth_methods_supported")
        return Metadata(
            issuer=issuer,
            source=url,
            authorization_endpoint=_text(data.get("authorization_endpoint")),
            token_endpoint=_text(data.get("token_endpoint")),
            token_endpoint_auth_methods=tuple(m for m in methods if isinstance(m, str))
            if isinstance(methods, list)
            else DEFAULT_AUTH_METHODS,
        )
    raise DiscoveryError(
        f"No authorization server metadata found for {issuer}: {'; '.join(tried)}. Check the issuer URL (the "
        "server's documentation names it), or give --site, --authorize-url and --token-url without --issuer."
    )


def _unusable(answer: Answer) -> str | None:
    """Why an answer is not a metadata document, or None if it is a JSON object."""
    from .oauth import server_text

    if answer.truncated:
        return f"answered with over {MAX_METADATA // 1024} KB, which no metadata document needs"
    if answer.status != 200:
        where = answer.headers.get("location")
        return f"answered {answer.status}" + (f" (a redirect to {server_text(where, 120)})" if where else "")
    try:
        data = json.loads(answer.body)
    except ValueError:
        looks_html = "html" in answer.media_type or answer.body.lstrip()[:1] == b"<"
        return "answered with an HTML page, not JSON" if looks_html else "answered with something that is not JSON"
    if not isinstance(data, dict):
        return "answered with JSON that is not an object"
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def client_auth_for(methods: Sequence[str]) -> tuple[str, str] | None:
    """The profile's ``client_auth`` for what the server supports, and why; None if it supports neither."""
    if "client_secret_basic" in methods:
        return "basic", "the server supports client_secret_basic"
    if "client_secret_post" in methods:
        return "body", "the server supports client_secret_post, not client_secret_basic"
    if "none" in methods:
        return "body", "the server takes public clients (no secret), not client_secret_basic"
    return None


def settings_from(
    meta: Metadata,
    *,
    authorize_url: str | None = None,
    token_url: str | None = None,
    token_format: str | None = None,
    client_auth: str | None = None,
) -> Settings:
    """The profile fields for an issuer: explicit values win over the metadata; says how each was chosen."""
    found = {"authorize_url": meta.authorization_endpoint, "token_url": meta.token_endpoint}
    given = {"authorize_url": authorize_url, "token_url": token_url}
    keys = {
        "authorize_url": ("authorization_endpoint", "--authorize-url"),
        "token_url": ("token_endpoint", "--token-url"),
    }
    fields: dict[str, str] = {}
    notes: list[str] = []
    for name, (meta_key, flag) in keys.items():
        value = given[name]
        if value:
            fields[name] = value
            notes.append(f"{name}: {value} (given)")
            continue
        value = found[name]
        if value is None:
            raise DiscoveryError(f"The metadata at {meta.source} has no {meta_key}; give it with {flag} URL.")
        try:
            check_endpoint_url(value, name)
        except ConfigError as exc:
            raise DiscoveryError(
                f"The metadata at {meta.source} gives a {meta_key} that cannot be used: {exc.detail}."
            ) from None
        fields[name] = value
        notes.append(f"{name}: {value} (from the metadata)")
    if token_format:
        fields["token_format"] = token_format
        notes.append(f"token_format: {token_format} (given)")
    else:
        fields["token_format"] = "form"
        notes.append("token_format: form (RFC 6749 servers; --token-format json is Zephr's)")
    if client_auth:
        fields["client_auth"] = client_auth
        notes.append(f"client_auth: {client_auth} (given)")
    else:
        chosen = client_auth_for(meta.token_endpoint_auth_methods)
        if chosen is None:
            listed = ", ".join(meta.token_endpoint_auth_methods) or "none listed"
            raise DiscoveryError(
                f"The server {meta.issuer} authenticates clients only by {listed} (token_endpoint_auth_methods_"
                "supported); the app can send client_secret_basic or client_secret_post. Pass --client-auth "
                "basic or body to try anyway."
            )
        fields["client_auth"] = chosen[0]
        notes.append(f"client_auth: {chosen[0]} ({chosen[1]})")
    return Settings(fields, tuple(notes))
