"""A token endpoint that answers whatever the test tells it to: a hostile or broken server.

It listens on loopback, answers every request (any path, GET or POST) with the status and
body set last (a JSON value, or raw bytes for JSON that Python's encoder would not write,
such as NaN), and records each request's headers and body so a test can check what the
client sent. It stands in for the Public API too.
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Seen:
    """One request as the endpoint received it."""

    path: str
    headers: dict[str, str]
    body: bytes


class TokenServer:
    """``with TokenServer() as ts: ts.answer(200, {...}); ... ts.url``."""

    def __init__(self) -> None:
        self._status = 200
        self._body = b"{}"
        self._content_type = "application/json"
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner._lock:
                    owner.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status, payload, ctype = owner._status, owner._body, owner._content_type
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def site(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The token URL."""
        return f"{self.site}/token"

    def answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
        """Answer every following request with this status and body (bytes as they are, else as JSON)."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self._lock:
            self._status, self._body, self._content_type = status, payload, content_type

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
