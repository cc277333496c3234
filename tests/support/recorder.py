"""An HTTP server on 127.0.0.1 that records every request it gets: the "new host" of the token-binding tests.

It answers like a willing Zephr (a token for any POST, an account for any GET), so a client that
does send it something goes on as if it worked; the tests then find the request in ``requests``.
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))

    def _answer(self, doc: dict[str, object]) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._record()
        self._answer({"identifiers": {"email_address": "attacker@example.com"}})

    def do_POST(self) -> None:
        self._record()
        self._answer({"access_token": "oa_from_the_new_host", "token_type": "bearer", "expires_in": 3600})

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []


class Recorder:
    """``with Recorder() as host:`` - ``host.url`` to point a profile at, ``host.requests`` what came."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL (loopback http, which profiles accept)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far."""
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
