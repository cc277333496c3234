"""One app per user and config dir: claiming the rendezvous, or handing over to the app that runs.

``claim_instance`` makes this launch the running app (a ``Server`` to answer later
launches with), or asks the running one to come to the front (and show a profile) and
says how to exit. ``instance_handler`` is how the running app answers: ``activate`` from
another launch, ``status`` from the CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ZephrError
from ..instance import InstanceError, Rendezvous, Server

if TYPE_CHECKING:
    from .session import Session
    from .shell import DesktopShell

ACTIVATE_WAIT = 15.0  # seconds another launch's request waits for this app's window to exist


def instance_handler(session: Session, shell: DesktopShell) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What the running app does when another launch (``activate``) or the CLI (``status``) asks."""

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "status":
            uri = session.listening_on()
            return {"ok": True, "listening": urlsplit(uri).netloc if uri else None}
        if not shell.ready.wait(ACTIVATE_WAIT):
            return {"ok": False, "error": "the window is still starting; try again in a moment"}
        error: str | None = None
        if request["profile"]:
            try:
                session.select(request["profile"])
                shell.push({"type": "profile_selected"})
            except ZephrError as exc:
                error = exc.message
        shell.bring_to_front()
        return {"ok": error is None, "error": error}

    return handle


def claim_instance(profile_name: str | None) -> tuple[Server | None, int | None]:
    """Become the running app, or hand over to the one that runs.

    Returns (the server to answer other launches with, None) to go on opening the window,
    (None, None) to go on without one (no usable rendezvous: said on stderr), or
    (None, exit code) when the running app took over (or could not be reached).
    """
    from ..paths import config_dir

    rendezvous: Rendezvous | None = None
    try:
        rendezvous = Rendezvous.for_config(config_dir())
        reply = _hand_over(rendezvous, profile_name)
    except InstanceError as exc:
        if rendezvous is None or not rendezvous.running():
            print(f"zephr-desktop: cannot tell whether the app already runs ({exc}); opening a new window.",
                  file=sys.stderr)  # fmt: skip
            return None, None
        print(
            f"zephr-desktop: the app is already running but did not answer ({exc}). "
            "Close its window (or end its process) and start it again.",
            file=sys.stderr,
        )
        return None, 1
    if isinstance(reply, Server):
        return reply, None
    if not reply["ok"]:
        print(f"zephr-desktop: the app is already running; brought its window to the front, but: {reply['error']}",
              file=sys.stderr)  # fmt: skip
        return None, 1
    shown = f", showing profile '{profile_name}'" if profile_name else ""
    print(f"zephr-desktop: the app is already running; brought its window to the front{shown}.", file=sys.stderr)
    return None, 0


def _hand_over(rendezvous: Rendezvous, profile_name: str | None) -> Server | dict[str, Any]:
    """Claim the rendezvous (a Server), or ask the app that holds it to come to the front (its reply)."""
    for _attempt in range(3):
        server = rendezvous.claim()
        if server is not None:
            return server
        try:
            return rendezvous.ask({"op": "activate", "profile": profile_name})
        except InstanceError:
            if rendezvous.running():
                raise
            # It quit between our look and our call: try to be the running app again.
    raise InstanceError("the running app keeps starting and stopping")
