"""One writer per folder: an OS lock on `FOLDER/.lock`, held while a process writes there.

`fcntl.flock` locks belong to the open file, so the kernel releases them when the process ends,
however it ends (kill -9 included): a lock never outlives its holder and never needs cleaning up.
The holder writes its PID into the file, so the refusal can say who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from tocha.errors import TochaError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def hold(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder`'s lock for the block, or fail at once naming the process that holds it."""
    import fcntl  # POSIX; imported here so that importing tocha stays possible elsewhere

    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise TochaError(f"cannot write in {folder}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise TochaError(f"{folder} is in use by process {holder} ({what} there has not finished); "
                             "wait for it, or stop it first") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
