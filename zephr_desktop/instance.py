"""One running app per user and set of profiles: a second launch hands over to the first.

The rendezvous is a private directory, ``<user runtime dir>/zephr-desktop`` (``$XDG_RUNTIME_DIR``
on Linux), that must be a real directory owned by the user with no access for anyone else;
if it is not, there is no rendezvous and the app runs on its own (nothing is trusted there).
In it, for each config dir (so ``ZEPHR_DESKTOP_CONFIG_DIR`` gives another instance):

- ``<key>.lock``: the running app holds an exclusive lock on it for its whole life. The
  kernel drops the lock when the process dies, however it dies, so a socket left by a
  killed app is known to be stale (its lock is free) and is replaced.
- ``<key>.sock``: a Unix socket the running app listens on. Each connection carries one
  request line and one reply line: small JSON objects, size-capped and validated, with
  short timeouts. Both ends check the other's uid (``SO_PEERCRED``) where the system tells it.

Requests: ``{"op": "activate", "profile": NAME-or-null}`` (bring the window to the front,
show that profile) and ``{"op": "status"}`` (which loopback address a sign-in in progress
is listening on, for the CLI's ``login``). Plain sockets rather than Qt's ``QLocalServer``:
the second launch and the CLI must answer without loading Qt.

Standard library and platformdirs only. Where there are no Unix sockets (Windows), there
is no rendezvous: every launch opens its own window.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import socket
import stat
import struct
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .fileutil import make_dirs

log = logging.getLogger(__name__)

APP_DIR = "zephr-desktop"
MAX_MESSAGE = 2048  # bytes, newline included; a request is under 100, a reply with an error under 1300
IO_TIMEOUT = 3.0  # seconds for one request or reply to arrive
START_WAIT = 10.0  # seconds a second launch waits for a running app that is still starting to listen
REPLY_WAIT = 20.0  # seconds it waits for the answer (the window may still be drawing itself)
_MAX_UNIX_PATH = 100  # sun_path is 104 bytes on macOS, 108 on Linux; keep a margin
_PROFILE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_HOST_PORT_CHARS = _PROFILE_CHARS | frozenset(":[]%")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class InstanceError(Exception):
    """The rendezvous cannot be used, or the running app did not answer; the message says why."""


# -- where ------------------------------------------------------------------------------------
def runtime_dir() -> Path:
    """The user's runtime dir for the app (not created here)."""
    from platformdirs import user_runtime_path

    with warnings.catch_warnings():
        # Newer platformdirs warn when XDG_RUNTIME_DIR is unset and fall back to a checked private dir,
        # and refuse (PermissionError) a fallback dir that another user made.
        warnings.simplefilter("ignore")
        try:
            return user_runtime_path(APP_DIR, appauthor=False, ensure_exists=False)
        except OSError as exc:
            raise InstanceError(f"no private runtime dir: {exc}") from exc


def private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 (parents as needed) and check it is ours alone; raise InstanceError if not."""
    try:
        make_dirs(path.parent)  # missing parents 0700 too, whatever the umask
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
    except OSError as exc:
        raise InstanceError(f"cannot create {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise InstanceError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise InstanceError(f"{path} belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise InstanceError(f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
    return path


def instance_key(config_dir: Path) -> str:
    """A short name for one config dir: each set of profiles has its own running app."""
    resolved = os.path.realpath(config_dir)
    return hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket, where the system tells it (Linux)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None  # elsewhere the 0700 directory is what keeps other users out
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
    return int(uid)


def _same_user(sock: socket.socket) -> bool:
    uid = peer_uid(sock)
    return uid is None or uid == os.getuid()


# -- messages ------------------------------------------------------------------------------------
def encode(message: dict[str, Any]) -> bytes:
    """One message as one line of compact JSON."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
    if len(data) > MAX_MESSAGE:
        raise InstanceError(f"message too long ({len(data)} bytes)")
    return data


def read_message(sock: socket.socket, timeout: float = IO_TIMEOUT) -> dict[str, Any]:
    """Read one line (at most MAX_MESSAGE bytes, within ``timeout``) and parse it as a JSON object."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise InstanceError("no complete message in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(MAX_MESSAGE + 1 - len(data))
        except TimeoutError as exc:
            raise InstanceError("no complete message in time") from exc
        if not chunk:
            raise InstanceError("the other end closed the connection before a complete message")
        data += chunk
        if len(data) > MAX_MESSAGE or b"\n" in data[:-1]:
            raise InstanceError("message too long, or more than one")
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise InstanceError("message is not JSON") from exc
    if not isinstance(message, dict):
        raise InstanceError("message is not a JSON object")
    return message


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line of printable characters, cut to ``limit``."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def valid_profile_name(value: Any) -> bool:
    """A profile name as ``profile.check_name`` allows them (checked again there); None means none was asked for."""
    return value is None or (
        isinstance(value, str) and 0 < len(value) <= 64 and set(value) <= _PROFILE_CHARS and value[0].isalnum()
    )


def check_request(message: dict[str, Any]) -> dict[str, Any]:
    """The request with exactly the fields its op takes, or InstanceError."""
    op = message.get("op")
    if op == "activate":
        if set(message) - {"op", "profile"} or not valid_profile_name(message.get("profile")):
            raise InstanceError("bad activate request")
        return {"op": op, "profile": message.get("profile")}
    if op == "status":
        if set(message) != {"op"}:
            raise InstanceError("bad status request")
        return {"op": op}
    raise InstanceError("unknown request")


def check_reply(message: dict[str, Any]) -> dict[str, Any]:
    """A reply: ``ok`` (bool), ``error`` (short text or null), ``listening`` (``host:port`` or null)."""
    ok, error, listening = message.get("ok"), message.get("error"), message.get("listening")
    if not isinstance(ok, bool) or set(message) - {"ok", "error", "listening"}:
        raise InstanceError("bad reply")
    if error is not None and not (isinstance(error, str) and len(error) <= 300 and error.isprintable()):
        raise InstanceError("bad reply")
    if listening is not None and not (
        isinstance(listening, str) and 0 < len(listening) <= 300 and set(listening) <= _HOST_PORT_CHARS
    ):
        raise InstanceError("bad reply")
    return {"ok": ok, "error": error, "listening": listening}


# -- the rendezvous ------------------------------------------------------------------------------
class Rendezvous:
    """The lock and the socket of one config dir's running app."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        self.lock_path = directory / f"{key}.lock"
        self.socket_path = directory / f"{key}.sock"
        if not hasattr(socket, "AF_UNIX"):
            raise InstanceError("this system has no Unix sockets")
        if len(os.fsencode(self.socket_path)) > _MAX_UNIX_PATH:
            raise InstanceError(f"the socket path would be too long ({self.socket_path})")

    @classmethod
    def for_config(cls, config_dir: Path, directory: Path | None = None) -> Rendezvous:
        """The rendezvous of the app using ``config_dir``, in the user's runtime dir (checked private)."""
        return cls(private_dir(directory or runtime_dir()), instance_key(config_dir))

    def claim(self) -> Server | None:
        """Become the running app: lock, replace a stale socket, listen. None when another app holds the lock."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise InstanceError(f"cannot open {self.lock_path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise InstanceError(f"cannot lock {self.lock_path}: {exc.strerror or exc}") from exc
        try:
            # The lock was free, so whatever socket is there was left by an app that is gone.
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(str(self.socket_path))
                os.chmod(self.socket_path, 0o600)
                sock.listen(8)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            os.close(fd)
            raise InstanceError(f"cannot listen on {self.socket_path}: {exc.strerror or exc}") from exc
        except BaseException:
            os.close(fd)
            raise
        return Server(self, sock, fd)

    def ask(
        self, request: dict[str, Any], *, start_wait: float = START_WAIT, reply_wait: float = REPLY_WAIT
    ) -> dict[str, Any]:
        """Send a request to the running app and return its checked reply; InstanceError if it cannot be had."""
        data = encode(check_request(request))
        deadline = time.monotonic() + start_wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(IO_TIMEOUT)
                sock.connect(str(self.socket_path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise InstanceError("the running app does not answer") from exc
                time.sleep(0.05)  # it holds the lock and is about to listen
            except OSError as exc:
                sock.close()
                raise InstanceError(f"cannot reach the running app: {exc.strerror or exc}") from exc
        with sock:
            if not _same_user(sock):
                raise InstanceError("the socket is held by another user")
            try:
                sock.sendall(data)
            except OSError as exc:
                raise InstanceError(f"cannot reach the running app: {exc.strerror or exc}") from exc
            return check_reply(read_message(sock, reply_wait))

    def running(self) -> bool:
        """Whether an app holds the lock right now."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InstanceError(f"cannot open {self.lock_path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False


class Server:
    """The running app's end: answers requests one at a time on a background thread."""

    def __init__(self, rendezvous: Rendezvous, sock: socket.socket, lock_fd: int) -> None:
        self.rendezvous = rendezvous
        self._sock = sock
        self._lock_fd = lock_fd
        self._inode = os.stat(rendezvous.socket_path).st_ino
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def serve(self, handler: Handler) -> None:
        """Answer each request with ``handler(request)`` (requests are validated first)."""
        self._thread = threading.Thread(target=self._loop, args=(handler,), name="zephr-instance", daemon=True)
        self._thread.start()

    def _loop(self, handler: Handler) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed.is_set():
                    return
                time.sleep(0.1)
                continue
            with conn:
                try:
                    self._answer(conn, handler)
                except Exception as exc:  # one bad caller must not stop the next
                    log.warning("instance request refused: %s", exc if isinstance(exc, InstanceError) else type(exc))

    def _answer(self, conn: socket.socket, handler: Handler) -> None:
        if not _same_user(conn):
            raise InstanceError("a process of another user connected")
        request = check_request(read_message(conn))
        try:
            reply = handler(request)
        except Exception as exc:
            log.error("instance request %s failed: %s", request["op"], type(exc).__name__)
            reply = {"ok": False, "error": f"the app could not do that ({type(exc).__name__})"}
        if isinstance(reply.get("error"), str):
            reply = {**reply, "error": one_line(reply["error"])}
        conn.settimeout(IO_TIMEOUT)
        conn.sendall(encode(check_reply(reply)))

    def close(self) -> None:
        """Stop answering, remove the socket (if it is still ours) and let the lock go."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            if os.stat(self.rendezvous.socket_path).st_ino == self._inode:
                self.rendezvous.socket_path.unlink()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        os.close(self._lock_fd)  # the lock goes with it


def app_listening_on(config_dir: Path) -> str | None:
    """``host:port`` where the running app's sign-in in progress listens; None if none (or no app answers)."""
    try:
        rendezvous = Rendezvous.for_config(config_dir)
        if not rendezvous.running():
            return None
        reply = rendezvous.ask({"op": "status"}, start_wait=2.0, reply_wait=5.0)
    except InstanceError as exc:
        log.debug("could not ask the running app: %s", exc)
        return None
    listening = reply.get("listening")
    return listening if reply["ok"] and isinstance(listening, str) else None
