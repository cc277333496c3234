"""``zephr-desktop sandbox`` and ``python -m zephr_desktop.sandbox``: run the sandbox in the foreground.

The options, the banner that tells a person how to point the app at the sandbox, waiting
for Ctrl-C or SIGTERM, and main(), which returns the exit status.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from types import FrameType
from typing import Any

from .model import DEFAULT_CLIENT, FAULTS, MODES, TEST_USERS, Client, SandboxSettings, is_loopback_host
from .server import Sandbox


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


__all__ = ["main"]
