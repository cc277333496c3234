"""The sandbox's HTTP(S) server: the Sandbox handle, its request handler, and main()."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import selectors
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .messages import MAX_BODY, SESSION_COOKIE, Request, Response
from .model import (
    DEFAULT_CLIENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FAULTS,
    MODES,
    TEST_USERS,
    Client,
    SandboxSettings,
    host_is_ours,
    is_loopback_host,
)
from .routes import SandboxApp
from .state import SandboxState

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

    server: _Server
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


class _Server(ThreadingHTTPServer):
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


class Sandbox:
    """A local fake of Zephr's OAuth 2.0 server and Public API, on a loopback port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: SandboxSettings | None = None,
        tls: bool = False,
        *,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"The sandbox only listens on loopback addresses, not {host!r}.")
        self.host = host.strip("[]")
        self.requested_port = port
        self.tls = tls
        self.settings = settings if settings is not None else SandboxSettings()
        self.cert_path: str | None = None
        self._log = log
        self._state = SandboxState()
        self._state.register_client(DEFAULT_CLIENT)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._url: str | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, self.requested_port), family)
        try:
            port = int(server.server_address[1])
            scheme = "https" if self.tls else "http"
            shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
            self._url = f"{scheme}://{shown}:{port}"
            if self.tls:
                server.socket = self._tls_context().wrap_socket(
                    server.socket, server_side=True, do_handshake_on_connect=False
                )
            server.app = SandboxApp(self._state, lambda: self.settings, self._url)
            server.log = self._log
        except BaseException:
            server.server_close()
            self._cleanup_tmp()
            raise
        self._server = server
        self._thread = threading.Thread(target=server.serve, name=f"zephr-sandbox-{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and every connection, delete the TLS files."""
        server, self._server = self._server, None
        if server is not None:
            server.wake()
            if self._thread is not None:
                self._thread.join(timeout=5)
                self._thread = None
            server.server_close()
            server.close_connections()
        self._cleanup_tmp()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _tls_context(self) -> ssl.SSLContext:
        """A server context with a fresh self-signed certificate (cert_path is its PEM)."""
        from .tls import write_self_signed

        self._tmp = tempfile.TemporaryDirectory(prefix="zephr-sandbox-tls-")
        cert, key = write_self_signed(Path(self._tmp.name))
        self.cert_path = str(cert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    def _cleanup_tmp(self) -> None:
        """Remove the TLS files, if any."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- addresses ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The site URL, e.g. http://127.0.0.1:PORT (after start())."""
        if self._url is None:
            raise RuntimeError("The sandbox has not been started.")
        return self._url

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        return int(self.url.rsplit(":", 1)[1])

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.url}/zephr/oauth2/token"

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint (without parameters)."""
        return f"{self.url}/zephr/oauth2"

    # --- clients and records ------------------------------------------------------------------
    def register_client(self, client: Client) -> None:
        """Register a client (replacing one with the same client_id)."""
        self._state.register_client(client)

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters."""
        return self._state.stats()

    @property
    def token_requests(self) -> list[dict[str, Any]]:
        """A snapshot of the token requests' shapes (key names, never values)."""
        return self._state.token_requests()

    @property
    def issued(self) -> list[dict[str, Any]]:
        """A snapshot of every token response issued, in order (fault answers excluded)."""
        return self._state.issued()

    @property
    def known_secrets(self) -> tuple[tuple[str, str], ...]:
        """A snapshot of every secret issued or received so far, as (kind, value) pairs."""
        return self._state.known_secrets()


# --- command line ---------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    """The sandbox's command-line options."""
    parser = argparse.ArgumentParser(
        prog="zephr-desktop sandbox",
        description="Run a local fake of Zephr's OAuth 2.0 server and Public API (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8780, help="port (default 8780; 0 picks a free one)")
    parser.add_argument("--expires-in", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument("--code-lifetime", type=float, default=60.0, help="authorization code lifetime in seconds")
    parser.add_argument("--rotate", action="store_true", help="rotate refresh tokens on every refresh")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="zephr",
        help="zephr: JSON token bodies, raw Basic; rfc: forms too, Basic over form-urlencoded id and secret",
    )
    parser.add_argument("--fault", choices=FAULTS, help="make the token endpoint misbehave this way")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering token requests")
    parser.add_argument("--deny", action="store_true", help="the consent page's Allow acts as Deny")
    parser.add_argument("--any-port", action="store_true", help="loopback redirect URIs match on any port")
    parser.add_argument(
        "--redirect-uri", action="append", default=[], metavar="URI", help="register another redirect URI (repeatable)"
    )
    parser.add_argument("--tls", action="store_true", help="serve https with a throwaway self-signed certificate")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    return parser


def _banner(sandbox: Sandbox, client: Client) -> str:
    """What a person needs to point the app at the sandbox."""
    settings = sandbox.settings
    users = [f"{email} / {u['password']} ({u['first_name']} {u['surname']})" for email, u in TEST_USERS.items()]
    lines = [
        f"Zephr sandbox listening on {sandbox.url} (Ctrl-C to stop)",
        f"  site URL:       {sandbox.url}",
        f"  token URL:      {sandbox.token_url}",
        f"  client ID:      {client.client_id}",
        f"  client secret:  {client.client_secret}   (a sandbox secret)",
        f"  redirect URI:   {', '.join(client.redirect_uris)}",
        f"  test users:     {users[0]}",
        *[f"                  {u}" for u in users[1:]],
        f"  mode {settings.mode}, expires_in {settings.expires_in}s, rotation "
        f"{'on' if settings.rotate_refresh_tokens else 'off'}, fault {settings.fault or 'none'}",
    ]
    if settings.mode == "rfc":
        lines.append(f"  issuer:         {sandbox.url}   (its RFC 8414 metadata: `profile add --issuer`)")
    if sandbox.cert_path:
        lines.append(f"  CA certificate: {sandbox.cert_path}")
    return "\n".join(lines)


def _stderr_line(line: str) -> None:
    """Print one log line to stderr."""
    print(line, file=sys.stderr, flush=True)


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM."""
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    except ValueError:
        pass  # not the main thread: Ctrl-C arrives as KeyboardInterrupt instead
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until Ctrl-C; returns the exit status."""
    args = _parser().parse_args(None if argv is None else list(argv))
    if not is_loopback_host(args.host):
        print(
            f"error: --host {args.host} is not a loopback address; the sandbox only listens on "
            "127.0.0.1, ::1 or localhost.",
            file=sys.stderr,
        )
        return 2
    try:
        settings = SandboxSettings(
            expires_in=args.expires_in,
            code_lifetime=args.code_lifetime,
            rotate_refresh_tokens=args.rotate,
            mode=args.mode,
            fault=args.fault,
            delay=args.delay,
            auto_deny=args.deny,
            loopback_any_port=args.any_port,
        )
        client = replace(DEFAULT_CLIENT, redirect_uris=(*DEFAULT_CLIENT.redirect_uris, *args.redirect_uri))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(args.host, args.port, settings, args.tls, log=None if args.quiet else _stderr_line)
    sandbox.register_client(client)
    try:
        sandbox.start()
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}). "
            "Stop whatever uses that port or pick another with --port.",
            file=sys.stderr,
        )
        return 1
    try:
        print(_banner(sandbox, client), file=sys.stderr, flush=True)
        _wait_for_signal()
    except KeyboardInterrupt:
        pass  # Ctrl-C before the handler was in place: the same clean stop
    finally:
        sandbox.stop()
    print("Zephr sandbox stopped.", file=sys.stderr)
    return 0


__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "Sandbox", "main"]
