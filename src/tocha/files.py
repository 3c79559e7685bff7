"""Atomic writes: a file appears complete under its name or not at all, even after kill -9."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tocha.errors import TochaError

# Temporary files start with this prefix so nothing ever mistakes one for a finished file.
TMP_PREFIX = ".tmp-"


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None  # named: the user's path, not a temp
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except OSError as e:  # a full disk, a directory where the file goes...: said with the file's name
        Path(tmp_name).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def regular_file(path: str | Path, what: str) -> Path:
    """`path` if it is a regular file; else one error naming it. A FIFO would hang a read and a
    device like /dev/zero never end one (its size, 0, says nothing), so only regular files are read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise TochaError(f"{path}: no such {what} file") from None
    if not stat.S_ISREG(mode):
        raise TochaError(f"{path}: not a regular file (a {what} is read from a file)")
    return path


def umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write text (UTF-8) atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to `path` atomically. Serialised in memory first: torch's writer reports a full
    disk as an opaque RuntimeError ("unexpected pos"), a plain write as ENOSPC with the file's name."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def os_error_line(e: OSError) -> str:
    """One line for a filesystem error: what, and on which path."""
    import errno

    where = f" ({e.filename})" if e.filename else ""
    if e.errno == errno.ENOSPC:
        return f"no space left on the device{where}: free some space or write elsewhere (--out)"
    return f"{e.strerror or e}{where}"


def file_sha256(path: Path, block: int = 1 << 22) -> str:
    """The SHA-256 of a file's bytes, read a block at a time (any size)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while data := f.read(block):
            digest.update(data)
    return digest.hexdigest()
