"""Saves tokens in a loop until it is killed, for the crash-safety test; run as a separate process.

``python -m support.crash_writer DIR SALT`` reads one number BASE per line on stdin. For each it
forks a child that saves token BASE+1, BASE+2, ... for profile ``p`` in the store at DIR (the
0600 file fallback), writing ``saved N SECONDS`` (since the fork) after each save returns, until
the test kills it. The
parent writes ``pid PID`` at once and ``reaped PID STATUS`` once the child is dead. Forking from
this one warm, single-threaded process keeps each round at about a millisecond.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import filelock  # noqa: F401 - the store imports it on first use; here once, not in every child

from zephr_desktop.oauth import Token
from zephr_desktop.profile import Profile
from zephr_desktop.secret_store import FileBackend
from zephr_desktop.store import TokenStore

PROFILE = Profile.create(name="p", site_url="https://news.example.com", client_id="crash-safety")


def token(index: int, salt: str) -> Token:
    """Token number ``index``: every field says which save it belongs to, so a mix shows."""
    return Token(
        access_token=f"oa_{salt}_{index:06d}",
        token_type="bearer",
        expires_at=2_000_000_000.0 + index,
        obtained_at=1_000_000_000.0 + index,
        scopes=("user.account:read",),
        user_id=f"user-{index}",
        refresh_token=f"rt_{salt}_{index:06d}_refresh",
    )


def store_at(directory: Path) -> TokenStore:
    """The store under test: tokens in DIR, secrets in the 0600 file fallback."""
    return TokenStore(directory, secrets=FileBackend(directory / "secrets.json"), notice=lambda _: None)


def main(argv: list[str]) -> int:
    directory, salt = Path(argv[0]), argv[1]
    store = store_at(directory)
    out = sys.stdout.fileno()
    for line in sys.stdin:
        index = int(line)
        pid = os.fork()
        if pid == 0:  # the child: save until killed; it only ever exits if saving fails
            forked = time.monotonic()
            try:
                while True:
                    index += 1
                    store.save(PROFILE, token(index, salt))
                    os.write(out, f"saved {index} {time.monotonic() - forked:.6f}\n".encode())
            except BaseException as exc:
                os.write(2, f"save {index} failed: {type(exc).__name__}: {exc}\n".encode())
            os._exit(70)
        os.write(out, f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(out, f"reaped {pid} {status}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
