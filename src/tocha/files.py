"""Atomic writes: a file appears complete under its name or not at all, even after kill -9."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# Temporary files start with this prefix so nothing ever mistakes one for a finished file.
TMP_PREFIX = ".tmp-"


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(f)` on a temporary file beside `path`, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write text (UTF-8) atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to `path` atomically."""
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))
