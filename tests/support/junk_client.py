"""Floods a loopback listener with junk HTTP from concurrent clients; run as a separate process.

``python -m support.junk_client PORT TOTAL CLIENTS MARK`` sends TOTAL junk requests from CLIENTS
threads (a fresh connection each), prints ``mark`` once MARK are answered (the test then sends
the genuine callback while the rest keep coming), and at the end one JSON line: the answers
seen, per phase and kind of junk ("before": answered before ``mark``, so before the callback).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable

from support.rawhttp import build, exchange, status_of


def kinds(port: int) -> list[tuple[str, Callable[[], int | None]]]:
    """The kinds of junk, each a function that sends one and returns the status (None: no answer)."""

    def send(data: bytes) -> Callable[[], int | None]:
        return lambda: status_of(exchange(port, data))

    def half_then_hang_up() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /callback?state=")
        return None

    forged = "/callback?code=kcpa10fzqa9nmut95duwok0c&state=forged"
    return [
        ("wrong state", send(build(port, forged))),
        ("no state", send(build(port, "/callback?code=kcpa10fzqa9nmut95duwok0c"))),
        ("error, no state", send(build(port, "/callback?error=access_denied&error_description=x"))),
        ("foreign Host", send(build(port, forged, host=f"evil.example:{port}"))),
        ("no Host", send(build(port, forged, host=None))),
        ("other path", send(build(port, "/favicon.ico"))),
        ("POST", send(build(port, forged, method="POST", headers=("Content-Length: 3",), body=b"a=b"))),
        ("broken encoding", send(build(port, b"/callback?code=%zz\xff&state=%E2%82"))),
        ("binary", send(b"\x16\x03\x01\x00\xff" + bytes(range(256)) + b"\r\n\r\n")),
        ("pipelined", send(build(port, "/favicon.ico", headers=("Connection: keep-alive",)) * 3)),
        ("20 KB header", send(build(port, forged, headers=("X-Big: " + "b" * 20_000,)))),
        ("half a request, then hang up", half_then_hang_up),
    ]


def main(argv: list[str]) -> int:
    port, total, clients, mark = (int(a) for a in argv)
    plan = kinds(port)
    seen: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    done = [0]
    next_index = [0]

    def worker() -> None:
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                return
            name, send = plan[index % len(plan)]
            try:
                answer = str(send())
            except OSError as exc:  # a reset or refusal is an answer of its own kind, not a crash
                answer = type(exc).__name__
                with lock:
                    errors[answer] += 1
            with lock:
                done[0] += 1
                phase = "before" if done[0] <= mark else "after"
                seen[f"{phase}: {name}: {answer}"] += 1
                if done[0] == mark:
                    print("mark", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"sent": done[0], "outcomes": dict(seen), "errors": dict(errors)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
