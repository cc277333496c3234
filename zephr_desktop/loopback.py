"""The thin server under the sign-in listener: loopback sockets, a thread per connection, one request each.

It knows nothing of OAuth: it binds, reads each connection's request head under one deadline,
hands the bytes to a ``handle(head, send)`` callable, and closes the connection. It sets
SO_REUSEADDR (a second sign-in must not wait out TIME_WAIT) and listens with a backlog of 1024.
Idle and slow clients cost a thread each until their deadline, so past ``MAX_CONNECTIONS`` the
oldest connection that is not being answered is dropped: a flood cannot lock out the browser.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .errors import ListenerError, PortInUseError

log = logging.getLogger("zephr_desktop.listener")

MAX_HEAD_BYTES = 65536  # request line + headers; a real callback needs well under 4 KiB
MAX_CONNECTIONS = 256  # open at once, each with its own thread
BACKLOG = 1024  # a burst of connections completes its handshakes at once, the browser's among them
_LINGER_SECONDS, _LINGER_BYTES = 1.0, 2 * 1024 * 1024
_NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
_OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: ``handle(head, send)``: answer one request whose head (request line and headers) came in.
Handler = Callable[[bytes, Callable[[bytes], None]], None]


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending a request head, or -1 (a bare LF is tolerated, as http.server does)."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n", start), 4), (buf.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else -1


def _read_head(conn: socket.socket, deadline: float) -> bytes:
    """What the client sent up to the end of its head (or MAX_HEAD_BYTES, or its EOF), under one deadline."""
    buf = bytearray()
    while len(buf) < MAX_HEAD_BYTES:
        if (remaining := deadline - time.monotonic()) <= 0:
            raise TimeoutError  # idle or slowloris: dropped without an answer
        conn.settimeout(remaining)
        if not (chunk := conn.recv(MAX_HEAD_BYTES - len(buf))):
            break  # a half-closed client: what came is answered
        buf += chunk
        if head_end(buf, max(0, len(buf) - len(chunk) - 3)) >= 0:
            break  # what follows (a body, pipelined requests) is never read
    return bytes(buf)


def _linger(conn: socket.socket) -> None:
    """Read and drop what the client still sends, briefly: closing with unread input resets the answer away."""
    # Linux clients still read a response after a reset; others (Windows) may drop it unread.
    deadline, received = time.monotonic() + _LINGER_SECONDS, 0
    while received < _LINGER_BYTES and (remaining := deadline - time.monotonic()) > 0:
        conn.settimeout(remaining)
        if not (chunk := conn.recv(65536)):
            return
        received += len(chunk)


class LoopbackServer:
    """Serves bound, listening sockets from a daemon thread until close()."""

    def __init__(self, sockets: list[socket.socket], handle: Handler, read_timeout: float) -> None:
        self._sockets, self._handle, self._read_timeout = sockets, handle, read_timeout
        self._lock = threading.Lock()
        self._open: OrderedDict[socket.socket, bool] = OrderedDict()  # oldest first; True while being answered
        self._wake_r, self._wake_w = socket.socketpair()  # ends the accept loop at once
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="zephr-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting and drop the connections not being answered; the port is free when this returns."""
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(OSError):  # the loop has ended already
                    self._wake_w.send(b"\0")
            while self._drop_oldest():
                pass
        self._thread.join(2.0)

    def _accept_loop(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                for sock in (*self._sockets, self._wake_r):
                    sock.setblocking(False)  # a client that resets before accept() cannot stall the loop
                    selector.register(sock, selectors.EVENT_READ, sock)
                while True:
                    ready = [key.data for key, _ in selector.select()]
                    if self._wake_r in ready:
                        return
                    for sock in ready:
                        self._accept(sock)
        except OSError:
            log.debug("the listener's accept loop failed", exc_info=True)
        finally:
            with self._lock:
                for sock in (*self._sockets, self._wake_r, self._wake_w):
                    sock.close()

    def _accept(self, listening: socket.socket) -> None:
        try:
            conn = listening.accept()[0]
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("accept failed: %s", exc.strerror or exc)
            if exc.errno in _OUT_OF_FILES:
                with self._lock:
                    freed = self._drop_oldest()  # free a descriptor rather than spin
                if not freed:
                    time.sleep(0.05)
            return
        with self._lock:
            if len(self._open) >= MAX_CONNECTIONS and not self._drop_oldest():
                conn.close()  # every open connection is being answered
                return
            self._open[conn] = False
        try:
            threading.Thread(target=self._serve, args=(conn,), name="zephr-listener-conn", daemon=True).start()
        except RuntimeError:  # out of threads
            self._forget(conn)

    def _drop_oldest(self) -> bool:
        """Shut down the oldest connection not being answered (the lock is held); False if there is none."""
        conn = next((conn for conn, busy in self._open.items() if not busy), None)
        if conn is None:
            return False
        del self._open[conn]
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)  # its thread wakes, finds it gone and closes it
        return True

    def _mark(self, conn: socket.socket, busy: bool) -> bool:
        """Mark a connection being answered, or answered (then it is the first to drop); False if dropped."""
        with self._lock:
            if conn not in self._open:
                return False
            self._open[conn] = busy
            self._open.move_to_end(conn, last=busy)
            return True

    def _forget(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.pop(conn, None)
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            head = _read_head(conn, time.monotonic() + self._read_timeout)
            if head and self._mark(conn, True):
                conn.settimeout(self._read_timeout)
                self._handle(head, conn.sendall)
                if self._mark(conn, False):
                    conn.shutdown(socket.SHUT_WR)
                    _linger(conn)
        except OSError:  # the client left, the deadline passed, or the connection was dropped
            pass
        except Exception:
            log.debug("a listener connection failed", exc_info=True)
        finally:
            self._forget(conn)


def _listen(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if os.name == "nt" and exclusive is not None:  # pragma: no cover - there SO_REUSEADDR shares the port
            sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if ":" in address:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(addresses: tuple[str, ...], port: int) -> list[socket.socket]:
    """A listening socket on each address, all on one port (0: a free one); ListenerError names what failed.

    Only a later address that does not exist on this machine (``::1`` without IPv6) is skipped:
    no other program can listen there, and no browser can reach it.
    """
    retries = 4 if port == 0 else 0  # the free port found on the first address may be taken on the next
    while True:
        sockets: list[socket.socket] = []
        address, tried = addresses[0], port
        try:
            for address in addresses:
                try:
                    sockets.append(_listen(address, tried))
                except OSError as exc:
                    if not sockets or exc.errno not in _NO_IPV6:
                        raise
                    log.debug("%s is not on this machine (no IPv6?): listening on %s only", address, addresses[0])
                tried = int(sockets[0].getsockname()[1])
            return sockets
        except OSError as exc:
            for sock in sockets:
                sock.close()
            if not (sockets and exc.errno == errno.EADDRINUSE and retries > 0):
                raise _bind_error(exc, address, tried, both=len(addresses) > 1) from exc
            retries -= 1


def _bind_error(exc: OSError, address: str, port: int, *, both: bool) -> ListenerError:
    where = f"[{address}]" if ":" in address else address
    register = "register it on the site's Third Party Authentication screen"
    if exc.errno in {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)}:
        why = " (localhost means both 127.0.0.1 and [::1], and the browser may use either)" if both else ""
        return PortInUseError(
            f"Port {port} on {where} is already in use by another program{why}. Close it (or a previous "
            f"zephr-desktop login), or change the profile's redirect URI to a free port and {register}.",
            port=port,
        )
    if exc.errno in {errno.EACCES, getattr(errno, "WSAEACCES", -1)}:
        return ListenerError(
            f"Port {port} on {where} cannot be used (permission denied: ports below 1024 need admin rights, and "
            f"some ports are reserved by the system). Change the profile's redirect URI to another port and {register}."
        )
    if ":" in address and exc.errno in _NO_IPV6:
        return ListenerError(
            f"Cannot listen on {where} port {port} ({exc.strerror or exc}): IPv6 loopback seems unavailable. "
            "Use 127.0.0.1 in the profile's redirect URI and register that URI on the site."
        )
    return ListenerError(f"Cannot listen on {where} port {port}: {exc.strerror or exc}.")
