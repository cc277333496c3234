"""The one-instance rendezvous (``instance``): a private dir, a lock that dies with its app, small checked messages.

Each test has its own short runtime dir (a Unix socket path has about 100 bytes). The
attacks run through the socket as another program would: oversized, malformed and
unknown requests, a socket left by a killed app, a rendezvous dir another user made, and
(as root) a process of another user connecting.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zephr_desktop import instance
from zephr_desktop.instance import InstanceError, Rendezvous, Server

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user"
)


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zephr-rt-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rendezvous(runtime: Path, tmp_path: Path) -> Rendezvous:
    return Rendezvous.for_config(tmp_path / "config", runtime / "zephr-desktop")


class Recorder:
    """A handler that records the requests it was given and answers ok."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        if request["op"] == "status":
            return {"ok": True, "listening": "127.0.0.1:8765"}
        return {"ok": True}


@pytest.fixture
def serving(rendezvous: Rendezvous) -> Iterator[tuple[Server, Recorder]]:
    server = rendezvous.claim()
    assert server is not None
    recorder = Recorder()
    server.serve(recorder)
    try:
        yield server, recorder
    finally:
        server.close()


def raw_exchange(path: Path, data: bytes, timeout: float = 6.0) -> bytes:
    """Send raw bytes on the socket and return whatever comes back before it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def test_the_first_claims_a_second_asks_and_gets_the_answer(
    rendezvous: Rendezvous, serving: tuple[Server, Recorder]
) -> None:
    _server, recorder = serving
    assert rendezvous.running()
    assert rendezvous.claim() is None  # the lock is held: this launch is the second one
    assert rendezvous.ask({"op": "activate", "profile": "other"}) == {"ok": True, "error": None, "listening": None}
    assert rendezvous.ask({"op": "status"})["listening"] == "127.0.0.1:8765"
    assert recorder.requests == [{"op": "activate", "profile": "other"}, {"op": "status"}]


def test_files_are_private_and_gone_after_close(rendezvous: Rendezvous) -> None:
    server = rendezvous.claim()
    assert server is not None
    assert oct(rendezvous.directory.stat().st_mode & 0o777) == "0o700"
    assert oct(rendezvous.socket_path.stat().st_mode & 0o777) == "0o600"
    assert oct(rendezvous.lock_path.stat().st_mode & 0o777) == "0o600"
    server.close()
    assert not rendezvous.socket_path.exists()
    assert not rendezvous.running()
    again = rendezvous.claim()
    assert again is not None
    again.close()


def test_each_config_dir_has_its_own_instance(runtime: Path, tmp_path: Path) -> None:
    one = Rendezvous.for_config(tmp_path / "a", runtime / "zephr-desktop")
    two = Rendezvous.for_config(tmp_path / "b", runtime / "zephr-desktop")
    first = one.claim()
    second = two.claim()
    try:
        assert first is not None and second is not None
    finally:
        for server in (first, second):
            if server is not None:
                server.close()


_KILLED_APP = """
import sys, time
from pathlib import Path
from zephr_desktop.instance import Rendezvous
server = Rendezvous.for_config(Path(sys.argv[1]), Path(sys.argv[2])).claim()
assert server is not None
server.serve(lambda request: {"ok": True})
print("listening", flush=True)
time.sleep(60)
"""


def test_a_socket_left_by_a_killed_app_is_replaced(rendezvous: Rendezvous, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(
        [sys.executable, "-c", _KILLED_APP, str(tmp_path / "config"), str(rendezvous.directory)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "listening"
        assert rendezvous.running() and rendezvous.claim() is None
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        if app.stdout is not None:
            app.stdout.close()
    assert rendezvous.socket_path.exists()  # left behind: nothing answers on it
    assert not rendezvous.running()
    with pytest.raises(InstanceError):
        rendezvous.ask({"op": "status"}, start_wait=0.3)
    server = rendezvous.claim()  # the lock died with the app: the stale socket is replaced
    assert server is not None
    try:
        server.serve(Recorder())
        assert rendezvous.ask({"op": "status"})["ok"] is True
    finally:
        server.close()


@pytest.mark.parametrize(
    "data",
    [
        b"x" * (instance.MAX_MESSAGE + 10) + b"\n",  # too long
        b"x" * (instance.MAX_MESSAGE + 10),  # too long, and no end
        b"not json\n",
        b"[1, 2]\n",
        b'{"op": "run", "code": "import os"}\n',  # unknown op
        b'{"op": "activate", "profile": "../../etc"}\n',  # not a profile name
        b'{"op": "activate", "profile": 7}\n',
        b'{"op": "activate", "profile": null, "url": "file:///"}\n',  # a field it does not take
        b'{"op": "status", "profile": "x"}\n',
        b'{"op": "status"}\n{"op": "status"}\n',  # two at once
    ],
)
def test_bad_requests_get_no_answer_and_the_next_good_one_does(
    data: bytes, rendezvous: Rendezvous, serving: tuple[Server, Recorder]
) -> None:
    _server, recorder = serving
    assert raw_exchange(rendezvous.socket_path, data) == b""
    assert recorder.requests == []
    assert rendezvous.ask({"op": "status"})["ok"] is True
    assert recorder.requests == [{"op": "status"}]


def test_a_silent_caller_does_not_hold_the_app(rendezvous: Rendezvous, serving: tuple[Server, Recorder]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(rendezvous.socket_path))  # says nothing; the app gives up on it after IO_TIMEOUT
        started = time.monotonic()
        assert rendezvous.ask({"op": "status"})["ok"] is True
        assert time.monotonic() - started < instance.IO_TIMEOUT + 3


@pytest.mark.parametrize(
    "reply",
    [
        {"ok": "yes"},
        {"ok": True, "extra": 1},
        {"ok": False, "error": "x" * 301},
        {"ok": False, "error": "line\nbreak"},
        {"ok": True, "listening": "127.0.0.1:8765/evil path"},
        {"ok": True, "listening": 8765},
    ],
)
def test_replies_are_checked(reply: dict[str, Any]) -> None:
    with pytest.raises(InstanceError):
        instance.check_reply(reply)


def test_an_error_from_the_handler_goes_back_on_one_line(rendezvous: Rendezvous) -> None:
    server = rendezvous.claim()
    assert server is not None
    try:
        server.serve(lambda request: {"ok": False, "error": "No profile named 'x'.\nProfiles: a, b"})
        reply = rendezvous.ask({"op": "activate", "profile": "x"})
    finally:
        server.close()
    assert reply == {"ok": False, "error": "No profile named 'x'. Profiles: a, b", "listening": None}


def test_a_rendezvous_dir_open_to_others_is_refused(runtime: Path, tmp_path: Path) -> None:
    shared = runtime / "zephr-desktop"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    with pytest.raises(InstanceError, match="open to other users"):
        Rendezvous.for_config(tmp_path / "config", shared)


def test_a_symlink_in_place_of_the_rendezvous_dir_is_refused(runtime: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (runtime / "zephr-desktop").symlink_to(elsewhere)
    with pytest.raises(InstanceError, match="not a directory"):
        Rendezvous.for_config(tmp_path / "config", runtime / "zephr-desktop")


@as_root
def test_a_rendezvous_dir_made_by_another_user_is_refused(runtime: Path, tmp_path: Path) -> None:
    planted = runtime / "zephr-desktop"
    planted.mkdir(mode=0o700)
    os.chown(planted, NOBODY, NOBODY)  # another user got there first, to answer in the app's place
    with pytest.raises(InstanceError, match="belongs to another user"):
        Rendezvous.for_config(tmp_path / "config", planted)


_OTHER_USER = """
import os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("refused:", type(exc).__name__); sys.exit(0)
try:
    s.sendall(b'{"op": "activate", "profile": null}\\n')
    answer = s.recv(4096).decode()
except OSError:  # the app closed the connection on it
    answer = ""
print("answer:", answer or "(none)")
"""


@as_root
def test_another_user_cannot_reach_the_app(rendezvous: Rendezvous, serving: tuple[Server, Recorder]) -> None:
    _server, recorder = serving
    probe = [sys.executable, "-c", _OTHER_USER, str(rendezvous.socket_path)]
    # The private dir keeps the other user out.
    os.chmod(rendezvous.directory.parent, 0o755)
    out = subprocess.run(probe, capture_output=True, text=True, timeout=20, cwd="/").stdout
    assert out.startswith("refused:"), out
    # Were the dir and the socket open to all, the peer's uid would still turn it away.
    os.chmod(rendezvous.directory, 0o755)
    os.chmod(rendezvous.socket_path, 0o777)
    out = subprocess.run(probe, capture_output=True, text=True, timeout=20, cwd="/").stdout
    assert out.strip() == "answer: (none)", out
    assert recorder.requests == []
    os.chmod(rendezvous.directory, 0o700)
    assert rendezvous.ask({"op": "status"})["ok"] is True


def test_a_spoofing_server_of_the_same_path_must_answer_in_shape(rendezvous: Rendezvous) -> None:
    # Whatever answers on the socket, the caller only takes a reply of the right shape.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as fake:
        fake.bind(str(rendezvous.socket_path))
        fake.listen(1)

        def answer() -> None:
            conn, _ = fake.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(json.dumps({"ok": True, "listening": "x" * 5000}).encode() + b"\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(InstanceError):
            rendezvous.ask({"op": "status"})
        thread.join(5)


def test_app_listening_on_without_an_app_is_none(
    runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert instance.app_listening_on(tmp_path / "config") is None
