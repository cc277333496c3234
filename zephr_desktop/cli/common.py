"""What the CLI's commands share: the program name, error line, store, profile and token summary.

``_err`` prints the one line a failure gets on stderr; ``_store`` and ``_profile`` give the token
store and profile a command works on; ``_describe`` says in one sentence what a token is good for.
Everything beyond the standard library is imported inside the helpers, as in the commands.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

PROG = "zephr-desktop"


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _store(args: argparse.Namespace) -> Any:
    from ..store import TokenStore

    return TokenStore(client_secret_override=args.env_client_secret)


def _profile(name: str | None) -> Any:
    from ..config import get_profile

    return get_profile(name)


def _describe(token: Any, now: float | None = None) -> str:
    from ..oauth import printable

    left = token.seconds_left(now)
    expiry = (
        "no expiry given"
        if left is None
        else ("expired" if left <= 0 else f"expires in {int(left // 60)} min {int(left % 60)} s")
    )
    who = f" for user {printable(token.user_id)}" if token.user_id else ""
    return f"Signed in{who}; {expiry}; scopes: {printable(', '.join(token.scopes)) or 'none'}."
