"""The rules every request follows: one table of network failures for the token endpoint and the
Public API alike, and the size cap."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
import requests

from zephr_desktop.errors import ApiError, NetworkError
from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.transport import Endpoint, network_error
from zephr_desktop.zephr_api import get_account

TOKEN = Endpoint("https://auth.example.com:8443/oauth/token", "the token endpoint", "token URL")
API = Endpoint("https://news.example.com/blaize/account", "the site's Public API", "site URL")
TIMEOUT = (3.0, 7.0)


def _wrapped(outer: type[requests.exceptions.RequestException], inner: BaseException) -> Exception:
    """A requests exception around a lower-level one, as requests raises them."""
    try:
        try:
            raise inner
        except BaseException as low:
            raise outer(low) from low
    except requests.exceptions.RequestException as exc:
        return exc


def _unloadable_ca() -> ssl.SSLError:
    err = ssl.SSLError(0, "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found")
    err.library, err.reason = "X509", "NO_CERTIFICATE_OR_CRL_FOUND"
    return err


FAILURES = [
    # (what failed, the exception, words only that row's message has)
    (
        "untrusted certificate",
        lambda: _wrapped(requests.exceptions.SSLError, ssl.SSLCertVerificationError(1, "x")),
        "TLS verification failed for {url}: the certificate is not trusted",
    ),
    (
        "unloadable CA bundle",
        lambda: _wrapped(requests.exceptions.SSLError, _unloadable_ca()),
        "could not be loaded (NO_CERTIFICATE_OR_CRL_FOUND)",
    ),
    (
        "TLS on a plain port",
        lambda: _wrapped(requests.exceptions.SSLError, ssl.SSLError(1, "wrong version number")),
        "The TLS handshake with {where} failed for {name} {url}. Check that the {setting}'s scheme and port",
    ),
    (
        "proxy",
        lambda: _wrapped(requests.exceptions.ProxyError, OSError("proxy said no")),
        "The proxy refused or failed the request to {url}",
    ),
    (
        "connect timeout",
        lambda: _wrapped(requests.exceptions.ConnectTimeout, TimeoutError()),
        "Could not connect to {where} within 3 s. Check the profile's {setting}",
    ),
    (
        "read timeout",
        lambda: _wrapped(requests.exceptions.ReadTimeout, TimeoutError()),
        "did not answer within 7 s. Check the network and the profile's {setting}",
    ),
    (
        "stalled body",
        lambda: _wrapped(requests.exceptions.ConnectionError, TimeoutError()),
        "did not answer within 7 s",
    ),
    (
        "refused",
        lambda: _wrapped(requests.exceptions.ConnectionError, ConnectionRefusedError()),
        "Cannot reach {name} {url}: nothing is listening at {where} (connection refused). "
        "Check the profile's {setting}",
    ),
    (
        "unknown host",
        lambda: _wrapped(requests.exceptions.ConnectionError, socket.gaierror(-2, "unknown")),
        "The host name {host} in the {setting} {url} cannot be resolved",
    ),
    (
        "closed",
        lambda: _wrapped(requests.exceptions.ConnectionError, http.client.RemoteDisconnected("x")),
        "closed the connection without answering",
    ),
    (
        "reset",
        lambda: _wrapped(requests.exceptions.ConnectionError, ConnectionResetError()),
        "closed the connection without answering",
    ),
    (
        "not HTTP",
        lambda: _wrapped(requests.exceptions.ConnectionError, http.client.BadStatusLine("SSH-2.0")),
        "The server at {where} answered something that is not HTTP. Check the {setting}'s scheme and port",
    ),
    (
        "broken body",
        lambda: _wrapped(requests.exceptions.ChunkedEncodingError, OSError("x")),
        "sent an answer that breaks off or cannot be decoded (ChunkedEncodingError)",
    ),
    (
        "other connection error",
        lambda: _wrapped(requests.exceptions.ConnectionError, OSError("x")),
        "Cannot reach {name} {url} (ConnectionError). Check the profile's {setting}",
    ),
    (
        "anything else",
        lambda: _wrapped(requests.exceptions.InvalidURL, ValueError("x")),
        "The request to {name} {url} failed (InvalidURL)",
    ),
]


@pytest.mark.parametrize("endpoint", [TOKEN, API], ids=["token endpoint", "public api"])
@pytest.mark.parametrize(("case", "make", "words"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_failure_has_its_own_message_for_every_endpoint(
    endpoint: Endpoint, case: str, make: object, words: str
) -> None:
    exc = make()  # type: ignore[operator]
    error = network_error(exc, endpoint, TIMEOUT)
    assert isinstance(error, NetworkError)
    host = endpoint.url.split("/")[2].split(":")[0]
    expected = words.format(
        url=endpoint.url, where=endpoint.where, name=endpoint.name, setting=endpoint.setting, host=host
    )
    assert expected in error.message, error.message


@pytest.mark.parametrize("endpoint", [TOKEN, API], ids=["token endpoint", "public api"])
def test_no_two_rows_read_alike(endpoint: Endpoint) -> None:
    messages = {network_error(make(), endpoint, TIMEOUT).message for _, make, _ in FAILURES}  # type: ignore[operator]
    from zephr_desktop.transport import failures

    assert len(messages) == len(failures())


def test_where_fills_in_default_ports() -> None:
    assert Endpoint("https://a.example.com/x", "n", "s").where == "a.example.com:443"
    assert Endpoint("http://a.example.com/x", "n", "s").where == "a.example.com:80"
    assert Endpoint("http://[::1]:8080/x", "n", "s").where == "[::1]:8080"


# -- the Public API through the same table ---------------------------------------------------------
@contextlib.contextmanager
def raw_server(answer: bytes) -> Iterator[int]:
    """A port where each connection gets ``answer`` and then silence until the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)
                    stop.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()
        thread.join(5)


def _profile(port: int) -> Profile:
    site = f"http://127.0.0.1:{port}"
    return Profile.create(name="news", site_url=site, token_url=f"{site}/zephr/oauth2/token", client_id="cid")


TOKEN_VALUE = Token("oa_x", "bearer", expires_at=None, obtained_at=0.0)


def test_the_public_api_names_a_refused_connection(free_port: int) -> None:
    with pytest.raises(NetworkError) as info:
        get_account(_profile(free_port), TOKEN_VALUE)
    message = info.value.message
    assert "the site's Public API" in message and "(connection refused)" in message, message
    assert "Check the profile's site URL" in message, message


def test_the_public_api_names_an_answer_that_is_not_http() -> None:
    with raw_server(b"SSH-2.0-OpenSSH_9.6\r\n") as port, pytest.raises(NetworkError) as info:
        get_account(_profile(port), TOKEN_VALUE)
    assert "answered something that is not HTTP" in info.value.message, info.value.message


def test_the_public_api_names_a_stalled_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEPHR_DESKTOP_HTTP_TIMEOUT", "0.3")
    stall = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    with raw_server(stall) as port, pytest.raises(NetworkError) as info:
        get_account(_profile(port), TOKEN_VALUE)
    assert "did not answer within 0.3 s" in info.value.message, info.value.message


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_the_public_api_refuses_a_giant_answer(declared: bool) -> None:
    size = 2 * 1024 * 1024
    if declared:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        answer = head + b"[" + b"0," * (size // 2 - 1)
    else:
        chunk = b"0," * 32768
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(size // len(chunk) + 1))
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with raw_server(answer) as port, pytest.raises(ApiError) as info:
        get_account(_profile(port), TOKEN_VALUE)
    assert "over 1 MB" in info.value.message, info.value.message
