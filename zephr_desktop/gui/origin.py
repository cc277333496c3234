"""Where a consent page came from, without Qt: the window titles and the redirect URI's target.

``format_title`` turns a page's scheme, host and port into the consent window's (or a
popup's) title: hosts in punycode with their Unicode form beside it when that can be shown
safely, pages without a web origin marked as such. ``RedirectTarget`` says whether a URL
is a request for the redirect URI (same scheme, host, port and path, any query), which the
consent window stops before it is sent when the redirect URI is not on this computer.
"""

from __future__ import annotations

import encodings.idna
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

TITLE_SUFFIX = "Sign in to Zephr"
POPUP_SUFFIX = "Sign-in popup"
UNTRUSTED = "(no trustworthy origin)"
_WEB_PORTS = {"http": 80, "https": 443}


def _unicode_host(ace: str) -> str | None:
    """The Unicode form of a punycode (``xn--``) host, or None when it has none that can be shown safely."""
    labels = ace.split(".")
    if not any(label.lower().startswith("xn--") for label in labels):
        return None
    try:
        shown = ".".join(
            label[4:].encode("ascii").decode("punycode") if label.lower().startswith("xn--") else label
            for label in labels
        )
    except (UnicodeError, ValueError):
        return None
    # Direction overrides, joiners and other invisible characters would make the "readable" form lie.
    if any(unicodedata.category(ch)[0] in "CZ" for ch in shown):
        return None
    return shown


def _ace_host(host: str) -> str:
    """``host`` with every international label in punycode (Qt gives it so; this covers a Unicode one)."""
    if host.isascii():
        return host
    try:
        return ".".join(encodings.idna.ToASCII(label).decode("ascii") if label else "" for label in host.split("."))
    except UnicodeError:
        return host.encode("ascii", "backslashreplace").decode("ascii")


def format_title(scheme: str, host: str, port: int | None, suffix: str = TITLE_SUFFIX) -> str:
    """Where the consent page came from, as its window title.

    ``news.example.com - https - Sign in to Zephr``; the port only when it is not the
    default; an international host in punycode first, its Unicode form after it in
    brackets (``xn--pple-43d.com (аpple.com) - https - ...``) so a look-alike cannot pass
    for the real name; pages without a web origin (``about:``, ``blob:``, ``data:``) say
    so. Before anything has loaded (no scheme): just ``Sign in to Zephr``. Popups end in
    ``Sign-in popup`` instead.
    """
    if not scheme:
        return suffix
    if scheme not in _WEB_PORTS or not host:
        return f"{UNTRUSTED} - {suffix}"
    if ":" in host:  # IPv6
        origin = host if host.startswith("[") else f"[{host}]"
        shown = None
    else:
        origin = _ace_host(host)
        shown = _unicode_host(origin)
    if port not in (None, -1, _WEB_PORTS[scheme]):
        origin = f"{origin}:{port}"
    if shown is not None:
        origin = f"{origin} ({shown})"
    return f"{origin} - {scheme} - {suffix}"


@dataclass(frozen=True)
class RedirectTarget:
    """Where the redirect URI points: a URL with this scheme, host, port and path is the redirect, any query."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def of(cls, uri: str) -> RedirectTarget:
        """The target of a (valid) redirect URI."""
        found = cls._parts(uri)
        if found is None:
            raise ValueError(f"not a URL with a host: {uri!r}")
        return found

    @staticmethod
    def _parts(url: str) -> RedirectTarget | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if not parts.hostname:
            return None
        host = _ace_host(parts.hostname).lower().rstrip(".")
        return RedirectTarget(scheme, host, port or _WEB_PORTS.get(scheme, -1), unquote(parts.path) or "/")

    def matches(self, url: str) -> bool:
        """True when ``url`` is a request for the redirect URI (a URL that does not parse counts as one)."""
        found = self._parts(url)
        if found is None:
            return url.partition(":")[0].lower() in _WEB_PORTS  # an http(s) URL we cannot read: stop it
        return found == self
