"""The benchmark's child processes seen from outside: their session's memory and CPU, and ending them.

Each GUI contender runs in a session (and process group) of its own, so everything it started -
Python, QtWebEngine's zygote, renderer, GPU and utility processes - is found by session id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

CLOCK_SLACK = 0.005  # seconds two clocks on this machine may disagree by when one event is stamped twice
MIB = 1024.0 * 1024.0


def tree_cpu(sid: int) -> float:
    """CPU seconds used so far by every live thread of every process of a session (``schedstat``).

    Work done, not time waited: far less sensitive than wall time to other programs on the
    machine, so it is kept beside the times as a cross-check. Threads that already ended are
    not counted (the same for every contender).
    """
    total = 0
    for pid in _session_members(sid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += int((task / "schedstat").read_text().split()[0])  # nanoseconds on a CPU
    return total / 1e9


def _session_members(sid: int) -> list[int]:
    """Every live process whose session id is ``sid`` (the child started a new session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # Fields after the command name, which may itself hold spaces and parentheses.
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid:
                members.append(int(entry.name))
    return members


def tree_memory(sid: int) -> tuple[int, int, int]:
    """Summed PSS and USS (private pages) in bytes over a session's processes, and how many there were.

    PSS shares each library page among every process mapping it, on the whole machine; USS does
    not depend on other programs, so it is kept beside PSS as a cross-check.
    """
    pss, uss, count = 0, 0, 0
    for pid in _session_members(sid):
        with contextlib.suppress(OSError):
            fields = {}
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Pss", "Private_Clean", "Private_Dirty"):
                    fields[name] = int(rest.split()[0]) * 1024
            if "Pss" in fields:
                pss += fields["Pss"]
                uss += fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
                count += 1
    return pss, uss, count


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End a child's whole process group: TERM, a short grace, then KILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(3)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def process_uss(pid: int) -> int:
    """One process's private pages (USS) in bytes; 0 if it cannot be read."""
    total = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Private_Clean", "Private_Dirty"):
                total += int(rest.split()[0]) * 1024
    return total
