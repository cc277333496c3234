"""Raw HTTP/1.x over a socket, for requests no well-behaved client would send."""

from __future__ import annotations

import contextlib
import socket


def build(
    port: int,
    target: str | bytes,
    *,
    method: str = "GET",
    host: str | None = "",
    version: str = "HTTP/1.1",
    headers: tuple[str, ...] = (),
    body: bytes = b"",
) -> bytes:
    """A request; host "" means the listener's own ``127.0.0.1:PORT``, None means no Host header."""
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    line = method.encode("latin-1") + b" " + raw_target + (b" " + version.encode("latin-1") if version else b"")
    lines = [line]
    if host is not None:
        lines.append(f"Host: {host or f'127.0.0.1:{port}'}".encode("latin-1"))
    lines.extend(h.encode("latin-1") for h in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        with contextlib.suppress(OSError):  # the server may answer (and close) before all is sent
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def status_of(raw: bytes) -> int | None:
    """The status code of the first response in ``raw`` (None: no response at all)."""
    if not raw.startswith(b"HTTP/"):
        return None
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> str:
    """The body of the first response, as text."""
    return raw.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")
