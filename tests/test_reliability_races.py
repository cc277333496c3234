"""Reliability, items 4 and 5: concurrent refreshes across processes, and processes killed mid-save."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support import evidence
from support.cli import finish, start
from support.crash_writer import PROFILE, store_at, token
from support.signin import account_status, add_profile, quiet_store, sign_in

from zephr_desktop.config import get_profile
from zephr_desktop.sandbox import Sandbox

TESTS = Path(__file__).resolve().parent
PROCESSES = 10


@pytest.mark.reliability("refresh-race")
@pytest.mark.parametrize("meeting", ["started together", "queued behind a slow refresher"])
def test_ten_token_processes_refresh_a_rotating_token_once(
    sandbox: Sandbox, child_env: dict[str, str], meeting: str
) -> None:
    sandbox.settings.rotate_refresh_tokens = True  # a refresh token used twice is dead: a race shows
    sandbox.settings.expires_in = 1
    first = sign_in(add_profile(sandbox))
    sandbox.settings.expires_in = 3600
    assert first.expires_at is not None
    time.sleep(max(0.0, first.expires_at - time.time()) + 0.05)
    assert account_status(sandbox, first.access_token) == 401, "the token should have expired at the sandbox too"

    if meeting == "started together":
        procs = [start(child_env, "token") for _ in range(PROCESSES)]
    else:
        # Another process is mid-refresh: all ten reach the lock while it is held, then race for it.
        with quiet_store().refresh_lock("demo"):
            procs = [start(child_env, "token") for _ in range(PROCESSES)]
            time.sleep(1.5)
    results = [finish(p, timeout=60) for p in procs]

    failed = [r.err for r in results if r.code != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} `token` processes failed; first stderr:\n{failed[:1]}"
    assert not [r for r in results if "invalid_grant" in r.err], "a process used a refresh token already rotated"
    assert sandbox.stats["token_refresh_token"] == 1, (
        f"{sandbox.stats['token_refresh_token']} refresh requests reached the sandbox; the refresh lock must "
        "let exactly one process refresh"
    )
    fresh = sandbox.issued[-1]
    printed = Counter(r.out.strip() for r in results)
    assert printed == {fresh["access_token"]: PROCESSES}, "the processes printed different tokens"
    assert account_status(sandbox, fresh["access_token"]) == 200
    stored = quiet_store().load(get_profile("demo"))
    assert stored is not None and stored.refresh_token == fresh["refresh_token"], "the rotated refresh token was lost"
    waited = sum("refreshed by another process" in r.err for r in results)
    evidence.record(
        meeting=meeting,
        processes=PROCESSES,
        refresh_requests=sandbox.stats["token_refresh_token"],
        waited_for_the_refresher=waited,
        same_token=max(printed.values()),
    )
    if meeting != "started together":
        assert waited == PROCESSES - 1, f"only {waited} processes found the token refreshed while they waited"


KILLS = 250
OLD = "old token (killed before the new one was in place)"
NEW = "new token (killed after it was in place)"


class Writer:
    """The crash_writer process: fork a saving child, kill it, learn how far it got."""

    def __init__(self, directory: Path, salt: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "support.crash_writer", str(directory), salt],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=TESTS,
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the crash writer died; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
        return line.split()[0], line.split()[1:]  # type: ignore[return-value]

    def round(self, base: int, delay: float) -> list[tuple[int, float]]:
        """Save from base+1 on, SIGKILL after delay; return the saves reported (number, seconds after fork)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{base}\n")
        self.proc.stdin.flush()
        saved: list[tuple[int, float]] = []
        while True:
            kind, rest = self._line()
            if kind == "pid":
                pid = int(rest[0])
                break
            saved.append((int(rest[0]), float(rest[1])))
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        while True:
            kind, rest = self._line()
            if kind == "reaped":
                status = int(rest[1])
                break
            saved.append((int(rest[0]), float(rest[1])))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"the saving child ended by itself (status {status}): saving failed; stderr: "
            f"{self.proc.stderr.read() if self.proc.stderr else ''}"
        )
        return saved

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.reliability("crash-safety")
def test_a_save_killed_at_any_point_leaves_the_old_token_or_the_new_one(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    directory = tmp_path / "store"
    salt = secrets.token_hex(4)
    store = store_at(directory)
    store.save(PROFILE, token(0, salt))
    writer = Writer(directory, salt, child_env)
    rng = random.Random(secrets.randbits(32))
    outcomes: Counter[str] = Counter()
    try:
        # Calibrate: when the first save lands and how long each takes, so kills spread over the first two or three.
        saved = writer.round(0, 0.3)
        assert len(saved) >= 2, f"only {len(saved)} saves in 0.3 s: saving is too slow here to test this way"
        per_save = (saved[-1][1] - saved[0][1]) / (len(saved) - 1)
        window = min(0.2, saved[0][1] + 2.5 * per_save)
        current = saved[-1][0] if store.load(PROFILE) == token(saved[-1][0], salt) else saved[-1][0] + 1
        started = time.monotonic()
        for kill in range(KILLS):
            base = current
            saved = writer.round(base, rng.uniform(0, window))
            last, count = (saved[-1][0] if saved else base), len(saved)
            try:
                loaded = store.load(PROFILE)
            except Exception as exc:
                pytest.fail(f"kill {kill}: the store no longer loads after a crash ({type(exc).__name__}: {exc})")
            old, new = token(last, salt), token(last + 1, salt)
            assert loaded is not None, f"kill {kill}: the token is gone"
            if loaded == old:
                outcomes[OLD] += 1
                current = last
            elif loaded == new:
                outcomes[NEW] += 1
                current = last + 1
            else:
                pytest.fail(
                    f"kill {kill}: the store holds neither save {last} nor {last + 1} intact "
                    f"(access token of save {loaded.access_token[-6:]}, refresh token of save "
                    f"{(loaded.refresh_token or 'none')[-14:-8]})"
                )
            outcomes["saves completed"] += count
            outcomes["no save completed before the kill"] += count == 0
        seconds = time.monotonic() - started
    finally:
        writer.close()
    assert outcomes[OLD] + outcomes[NEW] == KILLS
    assert outcomes[OLD] > 0 and outcomes[NEW] > 0, f"the kills did not land at different points: {dict(outcomes)}"
    # Not failures (the token is intact), but left behind by kills: tidy() (run by logout and after
    # every refresh, under the profile's lock) must clear them without touching the live pair.
    leftovers = [p.name for p in directory.rglob("*.tmp")]
    orphans = _orphans(directory)
    before = store.load(PROFILE)
    with store.refresh_lock("p"):
        store.tidy("p", temp_age=0)
    assert store.load(PROFILE) == before, "tidy() changed the live token"
    assert list(directory.rglob("*.tmp")) == [] and _orphans(directory) == 0, "tidy() left leftovers behind"
    evidence.record(
        kills=KILLS,
        seconds=round(seconds, 1),
        save_ms=round(per_save * 1000, 2),
        window_ms=round(window * 1000, 1),
        outcomes=dict(outcomes),
        leftover_temp_files=len(leftovers),
        orphaned_refresh_tokens=orphans,
        tidied=True,
    )


def _orphans(directory: Path) -> int:
    """Refresh tokens in secrets.json that no token file points to (left by a kill between the two writes)."""
    stored = json.loads((directory / "secrets.json").read_text())
    live = {json.loads(p.read_text()).get("refresh_ref") for p in (directory / "tokens").glob("*.json")}
    return len([key for key in stored if "/refresh_token/" in key and key not in live])
