"""Where a profile's URLs may point: the checks of endpoint URLs and of the redirect URI.

RFC 3986 characters only, https (http for the loopback host alone), and the one redirect-URI
check, also run by the listener, which tells the app's own loopback listener from an https URI
caught in its window. Zephr's default endpoints and redirect URI live here too. Only the
standard library is imported, so the CLI's full ``token`` path stays light.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .errors import ConfigError

DEFAULT_TOKEN_URL = "https://console.zephr.com/zephr/oauth2/token"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
#: Zephr's authorize endpoint, under the site URL; a profile's ``authorize_url`` replaces it.
DEFAULT_AUTHORIZE_PATH = "/zephr/oauth2"
LOOPBACK_NAMES = ("localhost",)
# RFC 3986 section 2: unreserved, reserved and "%" (which must start a %XX escape).
_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The parameters the app puts on the authorize URL: an authorize_url may not carry them itself.
_AUTHORIZE_PARAMS = frozenset(
    ("client_id", "response_type", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method")
)


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


def check_http_url(value: Any, field_name: str, profile: str | None, path: str | None) -> str:
    """An endpoint URL: https (http for the loopback host only), no query, normalised (host lower-cased, no end /)."""
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


def check_authorize_url(value: Any, profile: str | None, path: str | None) -> str:
    """An authorize endpoint: an http(s) URL like the others, whose own query (RFC 6749 3.1) is kept."""
    if not isinstance(value, str):
        return check_http_url(value, "authorize_url", profile, path)
    base, has_query, query = value.strip().partition("?")
    checked = check_http_url(base, "authorize_url", profile, path)
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
        return check_authorize_url(value, None, None)
    return check_http_url(value, field_name, None, None)


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
