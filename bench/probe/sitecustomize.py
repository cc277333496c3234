"""Timestamps from inside the app for the benchmark's Allow-to-token breakdown (figure 5).

Found as ``sitecustomize`` only by the app processes the benchmark starts for figures 5 and 6
(their PYTHONPATH holds this folder), and active only when ``BENCH_PROBE_FILE`` names a file:
then thin wrappers around a few of the app's functions append ``<name> <epoch seconds>`` lines
to it. The app is otherwise unchanged; no figure that times a start runs with it.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

_PATH = os.environ.get("BENCH_PROBE_FILE")
_lock = threading.Lock()


def _mark(name: str) -> None:
    line = f"{name} {time.time():.6f}\n"
    with _lock, open(str(_PATH), "a", encoding="utf-8") as out:
        out.write(line)


def _around(owner: Any, attr: str, name: str, *, end: bool = True) -> None:
    original: Callable[..., Any] = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _mark(f"{name}-start")
        try:
            return original(*args, **kwargs)
        finally:
            if end:
                _mark(f"{name}-end")

    setattr(owner, attr, wrapper)


def _install() -> None:
    from zephr_desktop import listener, login, store
    from zephr_desktop.gui import consent, session, shell

    _around(listener.CallbackListener, "_exchange", "listener", end=False)
    _around(login, "exchange_code", "exchange")
    _around(store.TokenStore, "save", "save")
    _around(login.LoginFlow, "wait", "wait")
    _around(consent.ConsentWindow, "close", "close")
    _around(shell.DesktopShell, "push", "push", end=False)
    _around(session.Session, "snapshot", "snapshot")
    _around(session.Session, "sign_in", "sign-in")
    _around(consent.ConsentWindow, "open", "consent-open")
    _around(consent.ConsentWindow, "_swap_page", "swap")


if _PATH:
    _install()
