"""The rules of every outbound request: timeouts, TLS verification, proxies, a size cap, and
one ordered table of network failures, so the token endpoint and the Public API fail alike.

requests is imported only when a request is made: ``token`` with a fresh cached token never
pays for it. Proxies come from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``), as requests reads them.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError, NetworkError, ZephrError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: Connect and read timeouts for every HTTP request (requests has none by default).
HTTP_TIMEOUT = (10.0, 30.0)
#: Overrides HTTP_TIMEOUT: seconds for both, or ``CONNECT,READ`` (for slow links; tests use short ones).
HTTP_TIMEOUT_ENV = "ZEPHR_DESKTOP_HTTP_TIMEOUT"
#: An answer larger than this is refused (unread when its Content-Length says so): no token or
#: Public API answer comes near it.
MAX_RESPONSE = 1024 * 1024
_CHUNK = 64 * 1024
T = TypeVar("T")
Facts = dict[str, Any]


def http_timeout() -> tuple[float, float]:
    """The (connect, read) timeouts: ``HTTP_TIMEOUT``, or what ``ZEPHR_DESKTOP_HTTP_TIMEOUT`` says."""
    raw = os.environ.get(HTTP_TIMEOUT_ENV, "").strip()
    if not raw:
        return HTTP_TIMEOUT
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(
            f"{HTTP_TIMEOUT_ENV}={raw[:40]!r} is not a timeout: give seconds (e.g. 30) or CONNECT,READ "
            "(e.g. 5,30), or unset it."
        )
    return values[0], values[-1]


def tls_verify(verify: bool | str, profile_name: str) -> bool | str:
    """``verify=`` for requests (a profile's ``tls_verify``); says loudly, every time, when it is off."""
    if verify is False:
        log.warning(
            "TLS certificate verification is OFF for profile '%s' (insecure_skip_tls_verify); "
            "anyone on the network path can read the tokens",
            profile_name,
        )
    return verify


@dataclass(frozen=True)
class Endpoint:
    """Where a request goes, as messages name it: the URL, what it is, and the profile setting holding it."""

    url: str
    name: str  # "the token endpoint", "the site's Public API"
    setting: str  # "token URL", "site URL"

    @property
    def where(self) -> str:
        """``host:port``, the default port filled in."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or "?"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- the size cap ------------------------------------------------------------------------------
def limit_size(
    session: requests.Session, too_big: Callable[[requests.Response], ZephrError], limit: int = MAX_RESPONSE
) -> None:
    """Refuse answers over ``limit`` bytes on this session: unread if declared, else once read that far."""

    def hook(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        # Response hooks run before requests reads the body, so the body is read here, capped.
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            resp.close()
            raise too_big(resp)
        body = bytearray()
        for chunk in resp.iter_content(_CHUNK):
            body += chunk
            if len(body) > limit:
                resp.close()
                raise too_big(resp)
        resp._content = bytes(body)
        return resp

    session.hooks["response"].append(hook)


# -- the network failures, one ordered table ------------------------------------------------------


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (requests -> urllib3 -> socket), breadth first."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 16:
        item = todo.pop(0)
        if item is None or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [arg for arg in item.args if isinstance(arg, BaseException)]
        reason = getattr(item, "reason", None)
        todo += [reason if isinstance(reason, BaseException) else None, item.__cause__, item.__context__]
    return found


def _unloadable_ca(causes: list[BaseException]) -> str | None:
    import ssl

    for c in causes:
        if isinstance(c, ssl.SSLError) and getattr(c, "library", None) in ("X509", "PEM"):
            return str(getattr(c, "reason", None) or "unreadable")
    return None


Applies = Callable[[Exception, list[BaseException]], bool]


def _raised(*kinds: type[BaseException]) -> Applies:
    return lambda exc, causes: isinstance(exc, kinds)


def _caused(*kinds: type[BaseException]) -> Applies:
    return lambda exc, causes: any(isinstance(c, kinds) for c in causes)


def _all(*tests: Applies) -> Applies:
    return lambda exc, causes: all(test(exc, causes) for test in tests)


def _any(*tests: Applies) -> Applies:
    return lambda exc, causes: any(test(exc, causes) for test in tests)


@functools.cache
def failures() -> tuple[tuple[Applies, str], ...]:
    """(applies to the failure?, message), in order: the first that applies wins.

    Message fields: url, where (host:port), host, name/Name (what the URL is), setting (the
    profile field that holds it), connect and read (the timeouts), env, kind (the exception), ca.
    """
    import http.client
    import socket
    import ssl

    from requests import exceptions as rx

    return (
        (
            _all(_raised(rx.SSLError), _caused(ssl.SSLCertVerificationError)),
            "TLS verification failed for {url}: the certificate is not trusted. If the site uses a private CA, "
            "set ca_bundle in the profile (or REQUESTS_CA_BUNDLE).",
        ),
        (
            _all(_raised(rx.SSLError), lambda exc, causes: _unloadable_ca(causes) is not None),
            "The CA certificates to check {url} could not be loaded ({ca}). Check the profile's ca_bundle, and "
            "REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE if they are set: each must be a PEM file of certificates.",
        ),
        (
            # Not a certificate problem: typically https:// on a port that speaks plain http.
            _raised(rx.SSLError),
            "The TLS handshake with {where} failed for {name} {url}. Check that the {setting}'s scheme and "
            "port match the server (https:// only where it speaks TLS).",
        ),
        (
            _raised(rx.ProxyError),
            "The proxy refused or failed the request to {url}. Check HTTPS_PROXY / HTTP_PROXY (and NO_PROXY "
            "for hosts that must be reached directly).",
        ),
        (
            _raised(rx.ConnectTimeout),
            "Could not connect to {where} within {connect:g} s. Check the profile's {setting} and your "
            "network (a firewall may drop the connection).",
        ),
        (
            # A body that stalls half-way surfaces as a ConnectionError around a read timeout.
            _any(_raised(rx.Timeout), _caused(TimeoutError)),
            "{Name} {url} did not answer within {read:g} s. Check the network and the profile's {setting}, "
            "then try again (or raise {env}).",
        ),
        (
            _caused(ConnectionRefusedError),
            "Cannot reach {name} {url}: nothing is listening at {where} (connection refused). Check the "
            "profile's {setting} (and that the sandbox is running, for a sandbox profile).",
        ),
        (
            _caused(socket.gaierror),
            "The host name {host} in the {setting} {url} cannot be resolved. Check the profile's {setting} "
            "and your DNS or network connection.",
        ),
        (
            _caused(http.client.RemoteDisconnected, ConnectionResetError),
            "{Name} {url} closed the connection without answering. Try again; if it keeps happening, check "
            "the profile's {setting} and any proxy in between.",
        ),
        (
            _caused(http.client.BadStatusLine),
            "The server at {where} answered something that is not HTTP. Check the {setting}'s scheme and "
            "port (http:// where the server expects https://, or another service's port).",
        ),
        (
            _raised(rx.ChunkedEncodingError, rx.ContentDecodingError),
            "{Name} {url} sent an answer that breaks off or cannot be decoded ({kind}). Try again; if it keeps "
            "happening, check the profile's {setting} and any proxy in between.",
        ),
        (
            _raised(rx.ConnectionError, rx.Timeout),
            "Cannot reach {name} {url} ({kind}). Check the profile's {setting} and your network connection "
            "(and that the sandbox is running, for a sandbox profile).",
        ),
        (
            lambda exc, causes: True,
            "The request to {name} {url} failed ({kind}). Check the profile's {setting}.",
        ),
    )


def network_error(exc: Exception, endpoint: Endpoint, timeout: tuple[float, float]) -> NetworkError:
    """The message for a failed request: the first row of ``failures()`` that applies."""
    causes = _causes(exc)
    # For --verbose: what the network layers said (URLs and reasons; request bodies never appear here).
    log.debug("request failed: %s", " <- ".join(f"{type(c).__name__}: {str(c)[:160]}" for c in causes[:5]))
    facts: Facts = {
        "url": endpoint.url,
        "where": endpoint.where,
        "host": urlsplit(endpoint.url).hostname,
        "name": endpoint.name,
        "Name": endpoint.name[:1].upper() + endpoint.name[1:],
        "setting": endpoint.setting,
        "connect": timeout[0],
        "read": timeout[1],
        "env": HTTP_TIMEOUT_ENV,
        "kind": type(exc).__name__,
        "ca": _unloadable_ca(causes) or "unreadable",
    }
    message = next(text for applies, text in failures() if applies(exc, causes))
    return NetworkError(message.format(**facts))


def send(request: Callable[[], T], endpoint: Endpoint, timeout: tuple[float, float]) -> T:
    """Run ``request`` (a requests call); a failure of the network becomes one NetworkError from the table."""
    import requests

    try:
        return request()
    except requests.exceptions.RequestException as exc:
        raise network_error(exc, endpoint, timeout) from exc
