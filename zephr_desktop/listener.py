"""The one-shot loopback listener that receives the authorization redirect (DESIGN.md section 1, steps 3 and 6).

It binds the exact host and port of the redirect URI before the authorize URL is shown,
answers only ``GET`` on the callback path, hands the first callback whose ``state``
matches to :meth:`CallbackListener.wait`, shows the person a small result page, and
closes itself. Everything else gets 400/404/405 and leaves the wait untouched.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hmac
import html
import io
import logging
import os
import selectors
import socket
import socketserver
import string
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, cast
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from .errors import ListenerError, LoginCancelledError, LoginTimeoutError, PortInUseError
from .resources import asset_text

log = logging.getLogger("zephr_desktop.listener")

#: Host names (as ``urlsplit(uri).hostname`` spells them) a redirect URI may use.
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})

# Where each loopback name is bound: `localhost` is bound as 127.0.0.1, never resolved,
# so a hosts file cannot send it elsewhere; nothing is ever bound to 0.0.0.0.
_BIND_ADDRESSES: dict[str, tuple[socket.AddressFamily, str]] = {
    "127.0.0.1": (socket.AF_INET, "127.0.0.1"),
    "localhost": (socket.AF_INET, "127.0.0.1"),
    "::1": (socket.AF_INET6, "::1"),
}
_HOST_NAMES = ("127.0.0.1", "localhost", "[::1]")

MAX_HEAD_BYTES = 65536  # request line + headers; a real callback needs well under 4 KiB
MAX_QUERY_FIELDS = 100
MAX_CONNECTIONS = 512  # concurrent connection threads; more are closed at once rather than exhaust threads
REPORT_WAIT = 1.0  # how long the result page waits for report()
_PAGE_FLUSH_WAIT = 1.5  # how long close() lets the accepted request's page finish
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 2 * 1024 * 1024
_JOIN_TIMEOUT = 2.0
_MAX_MESSAGE_CHARS = 2000

_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
)

# Used only if assets/result.html is missing from a broken install: the page must still render.
_FALLBACK_TEMPLATE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>$title</title></head>'
    '<body><main class="$tone"><h1>$title</h1><p>$message</p></main></body></html>'
)


@dataclass(frozen=True, repr=False)
class Callback:
    """The query of the accepted redirect: first value per key, all values, and the raw query."""

    params: dict[str, str]
    multi: dict[str, list[str]]
    raw_query: str

    def __repr__(self) -> str:
        # The query carries the authorization code: a repr in a log or traceback must not.
        return f"Callback(keys={sorted(self.multi)!r})"


@functools.lru_cache(maxsize=1)
def _template() -> string.Template:
    try:
        return string.Template(asset_text("result.html"))
    except (OSError, UnicodeDecodeError):
        log.debug("assets/result.html is unreadable; using the built-in page")
        return string.Template(_FALLBACK_TEMPLATE)


def render_page(title: str, message: str, tone: str) -> str:
    """The result page with every inserted value HTML-escaped."""
    return _template().safe_substitute(title=html.escape(title), message=html.escape(message), tone=html.escape(tone))


def _head_end(buf: bytearray, start: int) -> int:
    """Index just past the blank line ending the head, or -1 (a bare LF is tolerated, as http.server does)."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n", start), 4), (buf.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else -1


def _linger(sock: socket.socket) -> None:
    """Read and drop what the client still sends, briefly, so closing does not reset the answer away."""
    # Closing a socket with unread input sends RST; Linux clients still read the response, but
    # others (Windows) may drop it unread (pipelined requests, a request body, an oversized line).
    deadline = time.monotonic() + _LINGER_SECONDS
    received = 0
    while received < _LINGER_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return
        received += len(chunk)


class _LoopbackServer(socketserver.TCPServer):
    """A ThreadingHTTPServer-like TCP server: a bounded daemon thread per connection."""

    # SO_REUSEADDR so a second sign-in need not wait out TIME_WAIT; on Windows it would let
    # another program bind the same port, so there SO_EXCLUSIVEADDRUSE is set instead.
    allow_reuse_address = os.name != "nt"
    request_queue_size = 128

    def __init__(self, family: socket.AddressFamily, address: tuple[str, int], listener: CallbackListener) -> None:
        # An instance attribute: TCPServer.__init__ reads it to create the socket.
        self.address_family = family
        self.listener = listener
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler, bind_and_activate=False)

    def server_bind(self) -> None:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if os.name == "nt" and exclusive is not None:  # pragma: no cover - Windows only
            self.socket.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.close_request(request)  # flooded: drop it rather than run out of threads
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="zephr-listener-conn", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            self._slots.release()
            self.close_request(request)

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError):  # the client may be gone already
            request.shutdown(socket.SHUT_WR)
            _linger(request)
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback to stderr; a dropped connection is not news.
        log.debug("connection ended early", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Answers one request per connection; BaseHTTPRequestHandler is used only to parse it."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # All I/O goes through self.connection with deadlines; rfile only ever holds the parsed head.
        self.connection = self.request
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()
        self.close_connection = True
        self.command = ""
        self.path = ""
        self._status = 0

    def finish(self) -> None:
        pass

    @property
    def _listener(self) -> CallbackListener:
        return cast(_LoopbackServer, self.server).listener

    def handle(self) -> None:
        listener = self._listener
        try:
            head, error = self._read_head(time.monotonic() + listener.read_timeout)
        except OSError:  # includes the read deadline (TimeoutError): a slow or idle client is dropped
            return
        if error:
            self.send_error(error)
            return
        if not head:
            return
        self.rfile = io.BytesIO(head)
        self.raw_requestline = self.rfile.readline(MAX_HEAD_BYTES + 1)
        if not self.parse_request():
            return
        self.close_connection = True
        self._route()

    def _read_head(self, deadline: float) -> tuple[bytes, int]:
        """The request line and headers read under one deadline (slowloris-proof), or an error status."""
        buf = bytearray()
        scanned = 0
        while True:
            end = _head_end(buf, max(0, scanned - 3))  # only the new bytes (and a split terminator)
            scanned = len(buf)
            if end >= 0:
                return bytes(buf[:end]), 0  # pipelined requests after it are ignored: one per connection
            if len(buf) >= MAX_HEAD_BYTES:
                too_long = (
                    HTTPStatus.REQUEST_URI_TOO_LONG
                    if buf.find(b"\n") < 0
                    else HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                )
                return b"", too_long
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.connection.settimeout(remaining)
            chunk = self.connection.recv(MAX_HEAD_BYTES - len(buf))
            if not chunk:
                return bytes(buf), 0  # a half-closed client: parse what came
            buf += chunk

    def _route(self) -> None:
        listener = self._listener
        if self.request_version == "HTTP/0.9":
            self._respond(HTTPStatus.BAD_REQUEST, "Bad request", "HTTP/1.0 or later is required.")
            return
        if not self._host_ok():
            self._respond(
                HTTPStatus.BAD_REQUEST,
                "Bad request",
                "This request was not addressed to the zephr-desktop sign-in listener.",
            )
            return
        if self.command != "GET":
            self._respond(
                HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed", "Only GET is answered here.", allow="GET"
            )
            return
        if not self.path.startswith("/"):  # absolute-form or `*`: never sent by a browser to us
            self._respond(HTTPStatus.BAD_REQUEST, "Bad request", "The request target is not a path.")
            return
        path, _, query = self.path.partition("?")
        if not listener._is_callback_path(path):
            self._respond(
                HTTPStatus.NOT_FOUND,
                "Not found",
                "Nothing here: this address only receives the Zephr sign-in response.",
            )
            return
        listener._handle_callback(self, query)

    def _host_ok(self) -> bool:
        """Whether the Host header names this listener (DNS-rebinding defence)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            return False
        if not hosts:
            # HTTP/1.0 may omit Host. Browsers always send it, and a rebinding attack needs a
            # browser, so a Host-less 1.0 request comes from a local program that could reach
            # this port anyway; it still needs the secret state to be accepted.
            return self.request_version == "HTTP/1.0"
        return hosts[0].strip().lower() in self._listener._host_names

    def handle_expect_100(self) -> bool:
        return True  # no body is ever read, so no interim 100 response

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # parse_request's own messages quote the request line; show a generic page instead.
        status = HTTPStatus(code)
        self._respond(status, status.phrase, f"The request could not be handled ({code} {status.phrase}).")

    def _respond(self, status: HTTPStatus, title: str, message: str, *, tone: str = "error", allow: str = "") -> None:
        """Send the whole response (one page, fixed security headers) and close the connection."""
        body = render_page(title, message, tone).encode("utf-8")
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *_SECURITY_HEADERS,
            ("Connection", "close"),
        ]
        if allow:
            headers.append(("Allow", allow))
        head = f"HTTP/1.1 {status.value} {status.phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        payload = head.encode("latin-1") + (b"" if self.command == "HEAD" else body)
        self._status = status.value
        self._log()
        self.connection.settimeout(self._listener.read_timeout)
        self.connection.sendall(payload)

    def _log(self) -> None:
        # Only method, path and status: the query carries the code and state.
        target = getattr(self, "path", None) or "-"
        path = target.partition("?")[0].partition("#")[0]
        log.debug("%.20s %.200r -> %d", self.command or "-", path, self._status)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default writes the request line, query and code included, to stderr


class CallbackListener:
    """Receives one authorization redirect on the loopback address of the profile's redirect URI."""

    def __init__(self, redirect_uri: str, *, expected_state: str, read_timeout: float = 5.0) -> None:
        if not expected_state:
            raise ValueError("expected_state must not be empty")
        if not read_timeout > 0:
            raise ValueError("read_timeout must be positive")
        self._given_uri = redirect_uri
        self._parts, self._host_spelling, self._bind_host, self._family, self._requested_port = _parse_redirect_uri(
            redirect_uri
        )
        self._callback_path = unquote(self._parts.path or "/", errors="replace")
        self._expected = expected_state.encode("utf-8", "replace")
        self.read_timeout = float(read_timeout)
        self._port = self._requested_port
        self._host_names: frozenset[str] = frozenset()
        self._server: _LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._outcome = threading.Event()  # set once: a callback was accepted, or the wait was cancelled
        self._callback: Callback | None = None
        self._cancel_message = ""
        self._accepted = False
        self._report: tuple[bool, str] | None = None
        self._reported = threading.Event()
        self._page_done = threading.Event()
        self._closed = False

    # -- public surface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the configured one before start())."""
        return self._port

    @property
    def redirect_uri(self) -> str:
        """The redirect URI with the bound port; host spelling, path and query as given."""
        if self._requested_port != 0:
            return self._given_uri.strip()  # exactly what was registered, not a re-serialisation
        return self._parts._replace(netloc=f"{self._host_spelling}:{self._port}").geturl()

    def start(self) -> CallbackListener:
        """Bind and listen now (before the authorize URL is shown); returns self."""
        if self._server is not None or self._closed:
            raise ListenerError("This redirect listener was already started; create a new one for a new sign-in.")
        _template()  # load the page now, not while the person waits for it
        try:
            server = _LoopbackServer(self._family, (self._bind_host, self._requested_port), self)
        except OSError as exc:
            raise self._bind_error(exc) from exc
        try:
            server.server_bind()
            server.server_activate()
            # Non-blocking, so a connection reset between select() and accept() cannot stall the loop;
            # every connection socket gets its own timeout before each read or write.
            server.socket.setblocking(False)
            wake_r, wake_w = socket.socketpair()  # lets close() end the accept loop at once
        except OSError as exc:
            server.server_close()
            raise self._bind_error(exc) from exc
        self._server = server
        self._port = int(server.server_address[1])
        self._host_names = frozenset(f"{name}:{self._port}" for name in _HOST_NAMES)
        if self._port == 80:  # browsers leave the default port out of Host
            self._host_names |= frozenset(_HOST_NAMES)
        self._wake_r, self._wake_w = wake_r, wake_w
        self._thread = threading.Thread(target=self._serve, args=(server, wake_r), name="zephr-listener", daemon=True)
        self._thread.start()
        log.debug("listening on %s", self.redirect_uri)
        return self

    def wait(self, timeout: float = 300.0) -> Callback:
        """Block until a callback with the expected state arrives; raises LoginTimeoutError or LoginCancelledError."""
        if self._server is None and not self._outcome.is_set():
            raise ListenerError("The redirect listener was not started; call start() before wait().")
        if not self._outcome.wait(max(0.0, timeout)):
            raise LoginTimeoutError(
                f"No sign-in response arrived within {timeout:g} seconds. "
                "Run the login again and finish signing in before the time limit."
            )
        if self._callback is None:
            raise LoginCancelledError(self._cancel_message)
        return self._callback

    def report(self, ok: bool, message: str) -> None:
        """Tell the result page how the sign-in ended (shown if it arrives within about a second)."""
        with self._lock:
            if self._report is None:
                self._report = (bool(ok), str(message)[:_MAX_MESSAGE_CHARS])
        self._reported.set()

    def cancel(self) -> None:
        """Stop waiting: a pending or later wait() raises LoginCancelledError."""
        self._finish_waiting("Sign-in cancelled. Run the login again to start over.")

    def close(self) -> None:
        """Stop serving and close the socket (the port is free when this returns); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            accepted = self._accepted
        self._finish_waiting(
            "Sign-in stopped: the redirect listener was closed before Zephr's response arrived. Run the login again."
        )
        self._reported.set()  # no report is coming any more: render the page now
        if accepted:
            # A CLI exits right after close(); let the browser get its page first.
            self._page_done.wait(_PAGE_FLUSH_WAIT)
        self._stop_serving()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT)
        if self._server is not None:
            self._server.server_close()  # already closed by the serve thread; harmless again
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> CallbackListener:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _bind_error(self, exc: OSError) -> ListenerError:
        where = "[::1]" if self._family == socket.AF_INET6 else self._bind_host
        port = self._requested_port
        code = exc.errno
        if code in {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)}:
            return PortInUseError(
                f"Port {port} on {where} is already in use by another program. Close it (or a previous "
                "zephr-desktop login), or change the profile's redirect URI to a free port and register it "
                "on the site's Third Party Authentication screen.",
                port=port,
            )
        if code in {errno.EACCES, getattr(errno, "WSAEACCES", -1)}:
            return ListenerError(
                f"Port {port} on {where} cannot be used (permission denied: ports below 1024 need admin "
                "rights, and some ports are reserved by the system). Change the profile's redirect URI to "
                "another port and register it on the site's Third Party Authentication screen."
            )
        if self._family == socket.AF_INET6:
            return ListenerError(
                f"Cannot listen on [::1] port {port} ({exc.strerror or exc}): IPv6 loopback seems unavailable. "
                "Use 127.0.0.1 in the profile's redirect URI and register that URI on the site."
            )
        return ListenerError(f"Cannot listen on {where} port {port}: {exc.strerror or exc}.")

    def _serve(self, server: _LoopbackServer, wake: socket.socket) -> None:
        """Accept connections until stopped, then close the listening socket."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(server.socket, selectors.EVENT_READ, "accept")
                selector.register(wake, selectors.EVENT_READ, "wake")
                while not self._stop.is_set():
                    # The timeout is only a backstop: the wake socket ends the loop at once.
                    for key, _ in selector.select(timeout=1.0):
                        if key.data == "wake" or self._stop.is_set():
                            return
                        self._accept(server)
        except Exception:
            log.debug("the listener's accept loop failed", exc_info=True)
        finally:
            server.server_close()

    def _accept(self, server: _LoopbackServer) -> None:
        try:
            request, client_address = server.get_request()
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("accept failed: %s", exc.strerror or exc)
            if exc.errno in {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}:
                time.sleep(0.05)  # out of descriptors: do not spin while the queue stays readable
            return
        server.process_request(request, client_address)

    def _stop_serving(self) -> None:
        self._stop.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # already closed: the loop has ended anyway
                self._wake_w.send(b"\0")

    def _finish_waiting(self, message: str) -> None:
        with self._lock:
            if self._outcome.is_set():
                return
            self._cancel_message = message
            self._outcome.set()

    def _is_callback_path(self, path: str) -> bool:
        return unquote(path, errors="replace") == self._callback_path

    def _handle_callback(self, handler: _Handler, query: str) -> None:
        """Accept the first callback whose state matches; refuse the rest without ending the wait."""
        try:
            multi = parse_qs(
                query, keep_blank_values=True, encoding="utf-8", errors="replace", max_num_fields=MAX_QUERY_FIELDS
            )
        except ValueError:  # too many fields
            multi = {}
        states = multi.get("state", [])
        # One state only, compared in constant time; anything else is not our sign-in.
        matches = len(states) == 1 and hmac.compare_digest(states[0].encode("utf-8", "replace"), self._expected)
        with self._lock:
            finished = self._outcome.is_set() or self._closed
            if not finished and matches:
                self._callback = Callback(
                    params={key: values[0] for key, values in multi.items()},
                    multi={key: list(values) for key, values in multi.items()},
                    raw_query=query,
                )
                self._accepted = True
                self._outcome.set()
        if finished:
            handler._respond(
                HTTPStatus.CONFLICT,
                "Sign-in already finished",
                "This sign-in is no longer in progress (it already finished or was cancelled). "
                "You can close this window and return to the app.",
                tone="info",
            )
            return
        if not matches:
            handler._respond(
                HTTPStatus.BAD_REQUEST,
                "Not the sign-in in progress",
                "This sign-in response does not belong to the sign-in in progress. It may come from an "
                "earlier attempt or another app. Return to the app and sign in again if it is still waiting.",
            )
            return
        try:
            self._reported.wait(REPORT_WAIT)
            with self._lock:
                report = self._report
            if report is None:
                title, message, tone = (
                    "Authorization received",
                    "Authorization received - return to the app",
                    "info",
                )
            elif report[0]:
                title, message, tone = "Signed in", "Signed in - you can close this window", "ok"
            else:
                title, message, tone = "Sign-in failed", report[1], "error"
            handler._respond(HTTPStatus.OK, title, message, tone=tone)
        finally:
            self._page_done.set()
            self._stop_serving()  # one-shot: free the port now that the answer is out


def _parse_redirect_uri(uri: str) -> tuple[SplitResult, str, str, socket.AddressFamily, int]:
    """Split and check a loopback redirect URI: parts, host as spelled, bind address, family, port."""

    def bad(why: str) -> ListenerError:
        return ListenerError(
            f"The redirect URI '{uri}' cannot be used: {why}. Use one like http://127.0.0.1:8765/callback "
            "(host 127.0.0.1, localhost or [::1]) and register it on the site's Third Party Authentication screen."
        )

    try:
        parts = urlsplit(uri.strip())
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise bad(f"it is not a valid URL ({exc})") from exc
    if parts.scheme.lower() != "http":
        raise bad("it must start with http:// (the listener on this computer is plain HTTP on loopback)")
    if parts.username is not None or parts.password is not None:
        raise bad("it must not contain a user name or password")
    if parts.fragment or "#" in uri:
        raise bad("it must not contain a #fragment")
    if hostname not in _BIND_ADDRESSES:
        raise bad("its host must be 127.0.0.1, localhost or [::1] (never 0.0.0.0 or a network address)")
    family, bind_host = _BIND_ADDRESSES[hostname]
    netloc = parts.netloc
    # Keep the host exactly as written (case, brackets): Zephr matches redirect URIs exactly.
    spelling = netloc[: netloc.index("]") + 1] if netloc.startswith("[") else netloc.partition(":")[0]
    return parts, spelling, bind_host, family, 80 if port is None else port
