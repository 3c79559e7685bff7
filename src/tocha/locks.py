"""One writer per folder: an OS lock on `FOLDER/.lock`, held while a process writes there.

`fcntl.flock` locks belong to the open file, so the kernel releases them when the process ends,
however it ends (kill -9 included): a lock never outlives its holder and never needs cleaning up.
The holder writes its PID into the file, so the refusal can say who holds it, and removes the file
when it lets go, so a finished run or prepared folder holds only what it is (a process that ended
without letting go leaves it, empty of meaning: the next holder takes it over). A process that
opened the file just before its holder removed it finds, once it holds the lock, that the path no
longer names its file, and takes the lock again on the file the path names: two holders never hold
two files. The open file is shared with any
child forked while it is held: a child left running after its parent died keeps the lock, and the
refusal then names that child (found through /proc on Linux), not only the dead PID the file holds.
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
    fd, held = -1, False
    try:
        for _ in range(100):  # another holder let go (and removed the file) as this one opened it
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise TochaError(f"cannot write in {folder}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise TochaError(refusal(folder, fd, what)) from None
            if still_named(fd, path):
                break
            os.close(fd)  # a file no path names any more: take the lock on the one it names now
            fd = -1
        else:
            raise TochaError(f"{folder}: its lock file keeps being replaced; is another program removing it?")
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if held:
            with contextlib.suppress(OSError):  # a read-only or vanished folder: nothing to remove
                path.unlink()  # while still held: whoever opens it next makes a new one
        if fd >= 0:
            os.close(fd)  # releases the lock


def still_named(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (not removed, nor replaced, meanwhile)."""
    try:
        mine, named = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def refusal(folder: Path, fd: int, what: str) -> str:
    """Who holds the lock: the PID its holder wrote; where that process has ended, the processes
    that still have the lock open (children it left running)."""
    written = os.pread(fd, 32, 0).decode(errors="replace").strip()
    if not written.isdigit() or is_running(int(written)):
        return (
            f"{folder} is in use by process {written or 'unknown'} ({what} there has not finished); "
            "wait for it, or stop it first"
        )
    holders = [pid for pid in lock_holders(fd) if pid != os.getpid()]
    if not holders:
        return (
            f"{folder} is locked, though process {written}, which took its lock, has ended: a process "
            "it started still holds it; stop that process first"
        )
    listed = " ".join(str(pid) for pid in holders)
    return (
        f"{folder} is locked by process {listed}, left running by process {written}, which has ended; "
        f"stop it first (kill {listed}), then run the command again"
    )


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, ended but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux): alive as far as anyone can tell
        return True


def lock_holders(fd: int) -> list[int]:
    """The processes with the file open as `fd` (Linux: each one's /proc/PID/fd); none elsewhere."""
    mine = os.fstat(fd)
    found = []
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # ended meanwhile, or another user's
            continue
        for name in fds:
            with contextlib.suppress(OSError):
                st = os.stat(f"/proc/{pid}/fd/{name}")
                if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                    found.append(pid)
                    break
    return sorted(found)
