"""A test-only control channel: lets the GUI tests drive the running app's pages.

Off unless ``ZEPHR_DESKTOP_TEST_CONTROL`` names a Unix socket path. The socket is created
0600 in the caller's (private, temporary) directory; each connection sends one JSON line
``{"op": ..., ...}`` and gets one JSON line back ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. Nothing here is reachable over the network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ENV_VAR = "ZEPHR_DESKTOP_TEST_CONTROL"
Handler = Callable[[dict[str, Any]], Any]


class ControlServer:
    """A line-oriented JSON request server on a Unix socket."""

    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._sock: socket.socket | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Bind the socket (0600) and serve in a daemon thread."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._serve, name="zephr-test-control", daemon=True).start()

    def stop(self) -> None:
        """Close the socket and remove its file."""
        self._stopped.set()
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                request = json.loads(data or b"{}")
                handler = self._handlers.get(str(request.get("op")))
                if handler is None:
                    reply: dict[str, Any] = {"ok": False, "error": f"unknown op {request.get('op')!r}"}
                else:
                    reply = {"ok": True, "result": handler(request)}
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply, default=str).encode() + b"\n")
