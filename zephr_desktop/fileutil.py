"""The app's files: private (0700 directories, 0600 files), checked, and written atomically.

A crash while writing leaves either the old content or the new, never a mix. A file or
directory another user could write, or that belongs to someone else, is refused with
``UnsafePathError`` (see ``paths.unsafe_reason``), as ssh refuses a writable ``~/.ssh``; a
secret file others could merely read is made 0600 with a warning (``tighten``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from pathlib import Path

from .errors import UnsafePathError
from .paths import unsafe_reason

log = logging.getLogger(__name__)


def check_private(*paths: Path) -> None:
    """Refuse any of ``paths`` that another user could write or that the user does not own."""
    for path in paths:
        reason = unsafe_reason(path)
        if reason is not None:
            raise UnsafePathError(reason, path=path)


def tighten(path: Path) -> None:
    """A secret file readable by others is made 0600, with a warning."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by other users (mode %o); it is now 0600", path, mode)


def make_dirs(path: Path) -> Path:
    """Create ``path`` and any missing parent with mode 0700, whatever the umask; existing ones are left alone.

    0700 for the parents too, as the XDG base directory spec asks (with umask 000, a ``~/.local``
    made 0777 would let another user swap the app's directories).
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by another process meanwhile
        if os.name == "posix":
            os.chmod(directory, 0o700)  # the umask may have taken bits away (0700 & ~umask)
    return path


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` like ``make_dirs``, then check it: the app's own directories are private.

    An existing one that others could read is made 0700; one that others could write, or that
    is not the user's, is refused.
    """
    make_dirs(path)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    check_private(path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def remove_stale_temps(directory: Path, prefix: str, older_than: float) -> int:
    """Delete ``atomic_write`` temp files (``PREFIX*.tmp``) a killed process left, if old enough."""
    import time

    removed = 0
    now = time.time()
    try:
        candidates = list(directory.glob(f"{prefix}*.tmp"))
    except OSError:
        return 0
    for path in candidates:
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed += 1
    return removed


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 via a temp file, fsync and rename."""
    ensure_private_dir(path.parent)
    check_private(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if os.name == "posix":
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        # The rename is only durable once the directory entry is flushed too.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
