"""An exclusive, non-blocking lock on a file, wherever Python runs.

``fcntl.flock`` on Linux and macOS, ``msvcrt.locking`` on Windows; elsewhere, a lock
file created with ``O_EXCL`` (removed on release; one left by a killed process must be
removed by hand, and the message says so). The operating-system locks are released by
the kernel when their process dies, so a killed writer never leaves a store locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:  # everywhere but Windows
    msvcrt = None


class Busy(Exception):
    """The lock is held by another process."""


def _os_lock(fd: int) -> None:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy from None
    else:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise Busy from None


@contextlib.contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the ``with``.

    Raises
    ------
    Busy
        If another process holds it.
    """
    p = Path(path)
    if fcntl is None and msvcrt is None:
        yield from _lock_file(p.with_name(p.name + ".held"))
        return
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        _os_lock(fd)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_file(p: Path) -> Iterator[None]:
    """The fallback: the lock is the existence of ``p``."""
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise Busy(f"(if no moviebarcode process runs, remove {p})") from None
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
