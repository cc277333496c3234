"""The ``login`` command: open the sign-in page (or print its URL), wait for the redirect.

The redirect reaches the app's loopback listener, or the person pastes the final URL on
stdin (read without ever blocking past the end of the sign-in); a port held by the desktop
app's own sign-in in progress gets a plain explanation.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from ..errors import LoginCancelledError, PortInUseError, ZephrError
from .common import _describe, _err, _profile, _store


def _stdin_lines(stdin: TextIO, done: threading.Event) -> Iterator[str]:
    """Lines from stdin until EOF or ``done``; never blocked in a read when ``done`` is set."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0 or os.name != "posix":
        # No pollable descriptor (an in-memory stream, or Windows): plain reads in a daemon thread.
        yield from stdin
        return
    import select

    # A thread still blocked in read() when the interpreter exits can abort the process, so poll.
    pending = b""
    while not done.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            if pending:
                yield pending.decode("utf-8", "replace")
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode("utf-8", "replace")


def _read_pasted(flow: Any, stdin: TextIO, done: threading.Event, ended: threading.Event) -> None:
    """Accept the final redirect URL pasted on stdin (for when the listener cannot receive it).

    Without a listener nothing else can end the wait: stdin's end cancels it (``ended`` is set).
    """
    for line in _stdin_lines(stdin, done):
        if done.is_set():
            return
        line = line.strip()
        if not line:
            continue
        try:
            flow.submit_redirect_url(line)
            return
        except ZephrError as exc:
            _err(exc.message)
    if not done.is_set() and not flow.listens:
        ended.set()
        flow.cancel()


def _app_holds_port(exc: PortInUseError) -> None:
    """Raise a plain error when the port is taken by the desktop app's own sign-in in progress."""
    from urllib.parse import urlsplit

    from ..instance import app_listening_on
    from ..paths import config_dir

    listening = app_listening_on(config_dir())
    try:
        port = urlsplit(f"//{listening}").port if listening else None
    except ValueError:
        port = None
    if port == exc.port:
        raise ZephrError(
            f"The desktop app is waiting for a sign-in on {listening}; finish or cancel it there, then try again."
        ) from exc


def cmd_login(args: argparse.Namespace, stdin: TextIO) -> int:
    from ..login import LoginFlow

    profile = _profile(args.profile)
    store = _store(args)
    flow = LoginFlow(profile, store.get_client_secret(profile.name), store=store, timeout=args.timeout)
    try:
        url = flow.start()
    except PortInUseError as exc:
        _app_holds_port(exc)
        raise
    done, stdin_ended = threading.Event(), threading.Event()
    reader: threading.Thread | None = None
    # With a redirect URI that is not on this computer, nothing listens: the person pastes where the browser ended.
    paste = (
        "If the browser cannot reach this machine, paste the address it ends on here and press Enter."
        if flow.listens
        else f"The site then sends your browser to {flow.redirect_uri}, which is not on this computer: copy the "
        "whole address from the browser's address bar as soon as it shows, paste it here and press Enter."
    )
    if args.no_browser:
        print(url, flush=True)
        print(f"Open the URL above, sign in and click Allow. {paste}", file=sys.stderr)
    else:
        import webbrowser

        site = "Zephr sign-in page" if profile.token_format == "json" else "sign-in page"
        print(f"Opening the {site} in your browser:\n  {url}", file=sys.stderr)
        if not webbrowser.open(url):
            print("Could not open a browser; open the URL above yourself.", file=sys.stderr)
        if not flow.listens:
            print(f"Sign in and click Allow. {paste}", file=sys.stderr)
    if args.no_browser or not flow.listens:
        reader = threading.Thread(target=_read_pasted, args=(flow, stdin, done, stdin_ended), daemon=True)
        reader.start()
    try:
        token = flow.wait()
    except KeyboardInterrupt:
        flow.cancel()
        _err("Sign-in cancelled.")
        return 130
    except LoginCancelledError:
        if stdin_ended.is_set():
            raise LoginCancelledError(
                "Standard input ended before the final redirect URL was pasted; run the login again and paste "
                f"the whole address the browser ends on (it starts with {flow.redirect_uri})."
            ) from None
        raise
    finally:
        done.set()
        if reader is not None:
            reader.join(1.0)
    print(_describe(token), file=sys.stderr)
    return 0
