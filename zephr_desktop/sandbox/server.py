"""The Sandbox handle: start and stop a local fake of Zephr on a loopback port, and its URLs.

A Sandbox owns one SandboxState (the default client registered), serves it through
SandboxServer (http_server.py) on a daemon thread, over HTTPS with a throwaway self-signed
certificate when asked, and exposes snapshots of its counters, token requests, issued
tokens and known secrets. The command line that runs one in the foreground is cli.py.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from .http_server import SandboxServer
from .model import DEFAULT_CLIENT, Client, SandboxSettings, is_loopback_host
from .routes import SandboxApp
from .state import SandboxState


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
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._url: str | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = SandboxServer((self.host, self.requested_port), family)
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


__all__ = ["Sandbox"]
