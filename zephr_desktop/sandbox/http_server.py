"""The sandbox's HTTP(S) server: sockets and HTTP/1.1 in, SandboxApp calls out.

_Handler turns each request into a Request for the app (after the Host check and the body
limits) and writes its Response; it logs method and path only, never a query string.
SandboxServer is the threaded server that runs the TLS handshake per connection, can be
woken to stop at once and closes its kept-alive connections on the way out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .messages import MAX_BODY, SESSION_COOKIE, Request, Response
from .model import host_is_ours
from .routes import SandboxApp

_log = logging.getLogger(__name__)
# Bodies up to this size are read and thrown away before a 413, so the client sees the
# answer instead of a reset; larger ones just get the connection closed.
_DRAIN_LIMIT = 16 * MAX_BODY


def _session_of(cookie_header: str) -> str | None:
    """The blaize_session cookie's value, if any."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP into SandboxApp calls; logs method and path only (never a query string)."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "ZephrSandbox/1.0"
    timeout = 15
    # Without TCP_NODELAY, a kept-alive connection stalls ~40 ms per answer (Nagle vs delayed ACK).
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        # The TLS handshake runs here, on the connection's own thread, not in accept().
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        """Read the body, ask the app, write its answer."""
        try:
            body = self._read_body()
            if body is None:
                return
            if not self._host_ok():
                self._refuse(
                    400, "The Host header must name this sandbox: localhost or a loopback address, and its port."
                )
                return
            response = self.server.app.handle(self._request(body))
            if response is None:
                self.close_connection = True  # the "drop" fault: no answer at all
                return
            self._send(response)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception:
            _log.exception("sandbox route failed: %s %s", self.command, urlsplit(self.path).path)
            self.close_connection = True
            self._send(Response(500, b"sandbox error", "text/plain; charset=utf-8"))

    def _host_ok(self) -> bool:
        """One Host header naming this sandbox; HTTP/1.0 may leave it out (browsers never do)."""
        hosts = self.headers.get_all("Host") or []
        if not hosts:
            return self.request_version == "HTTP/1.0"
        port, default = self.server.server_port, 443 if isinstance(self.request, ssl.SSLSocket) else 80
        return len(hosts) == 1 and host_is_ours(hosts[0], port, default)

    def _request(self, body: bytes) -> Request:
        """The app's view of this request."""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
            session=_session_of(headers.get("cookie", "")),
        )

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 400/411/413 for an unusable one."""
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "Send a Content-Length; chunked bodies are not accepted.")
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, "Content-Length is not a number.")
            return None
        if length > MAX_BODY:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            self._refuse(413, f"The body is larger than {MAX_BODY} bytes.")
            return None
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        """Read and discard length bytes."""
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)

    def _refuse(self, status: int, message: str) -> None:
        """Answer a transport-level problem and close the connection."""
        self.close_connection = True
        body = json.dumps({"error": "invalid_request", "error_description": message}).encode()
        self._send(Response(status, body, "application/json", (("Connection", "close"),)))

    def _send(self, response: Response) -> None:
        """Write a complete response with its Content-Length."""
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log = self.server.log
        if log is not None:
            log(f"{self.command} {urlsplit(self.path).path} {int(code) if str(code).isdigit() else code}")

    def log_message(self, format: str, *args: Any) -> None:
        # Silenced: the base class would print request lines, whose query strings hold state.
        return


class SandboxServer(ThreadingHTTPServer):
    """A threaded server that knows its open connections, so stop() can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self.app: SandboxApp
        self.log: Callable[[str], None] | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        # stop() writes to this pair to end serve() at once (serve_forever polls instead).
        self._wake_read, self._wake_write = socket.socketpair()
        super().__init__(address, _Handler)

    def serve(self) -> None:
        """Accept connections until wake() is called."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_read for key, _ in ready):
                    return
                self._accept_one()

    def _accept_one(self) -> None:
        """Hand one pending connection to its own thread."""
        try:
            request, address = self.get_request()
        except OSError:
            return
        try:
            self.process_request(request, address)
        except Exception:
            self.handle_error(request, address)
            self.shutdown_request(request)

    def wake(self) -> None:
        """Make serve() return."""
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); a loopback server needs none.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection (kept-alive ones would otherwise outlive stop())."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError, ssl.SSLError, OSError)):
            return  # clients hang up, time out and refuse our certificate: all normal here
        _log.exception("sandbox connection failed")
