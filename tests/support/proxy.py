"""A tiny forwarding HTTP proxy on 127.0.0.1 that remembers what it carried, for the proxy tests.

It handles absolute-form requests (``POST http://host:port/path``, what clients send to an
HTTP proxy for plain http) and ``CONNECT host:port`` tunnels (for https), and sends everything
to 127.0.0.1 whatever the host named: a URL on 127.0.0.2 is then reachable through the proxy
only, since the servers in the tests listen on 127.0.0.1 alone. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import threading
from types import TracebackType
from urllib.parse import urlsplit


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # a client or server hanging up is not news
            self._handle()

    def _handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(30)
        buffer = b""
        while True:  # one request after another on a kept-alive connection
            while b"\r\n\r\n" not in buffer:
                chunk = client.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            line, *headers = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ")
            if method == "CONNECT":
                port = int(target.rpartition(":")[2])
                self.server.seen.append(f"CONNECT {target}")
                with socket.create_connection(("127.0.0.1", port), timeout=30) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if buffer:
                        upstream.sendall(buffer)
                    _relay(client, upstream)
                return
            length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0)
            while len(buffer) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            url = urlsplit(target)
            self.server.seen.append(f"{method} {target.partition('?')[0]}")
            # Upstream closes after its answer (Connection: close); the answer's own length tells the client.
            kept = [h for h in headers if h.split(":")[0].strip().lower() not in ("connection", "proxy-connection")]
            origin = url.path + (f"?{url.query}" if url.query else "")
            forward = "\r\n".join([f"{method} {origin} {version}", *kept, "Connection: close"]) + "\r\n\r\n"
            with socket.create_connection(("127.0.0.1", url.port or 80), timeout=30) as upstream:
                upstream.sendall(forward.encode("latin-1") + body)
                while chunk := upstream.recv(65536):
                    client.sendall(chunk)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    seen: list[str]


class Proxy:
    """``with Proxy() as proxy:`` - ``proxy.url`` for HTTP(S)_PROXY, ``proxy.seen`` what went through."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.seen = []
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[str]:
        return list(self._server.seen)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(RuntimeError):
            self._thread.join(5)
