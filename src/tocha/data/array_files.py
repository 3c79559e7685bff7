"""A prepare's `.npy` arrays on disk: the room they need measured before any is made, each made at
its full size with its blocks taken at once, or reopened to go on.

Why the blocks are taken at once: a memory-mapped file is sparse until written, and a write into a
page the disk has no room for ends the process with SIGBUS, not an error. Why the room is measured
first: taken one array at a time, a disk with room for the first arrays but not the last was
filled to its last block before the refusal came (a prepare asked for 4096x4096 images took the
~71 GB a disk had free). Now every array's need is added up and compared with the free space
before a byte is taken; the caller removes the arrays it made when it fails after that.
"""

from __future__ import annotations

import errno
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.prepared_check import array_problem
from tocha.errors import TochaError

MARGIN_SHARE, MARGIN_BYTES = 0.01, 1 << 20  # beyond the arrays: the manifest, records, the filesystem's own


def npy_bytes(shape: tuple[int, ...], dtype: Any) -> int:
    """The size of a `.npy` file holding an array of `shape` and `dtype` (its header included)."""
    header = io.BytesIO()
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.tell() + math.prod(shape) * np.dtype(dtype).itemsize


def bytes_to_take(arrays: dict[Path, tuple[tuple[int, ...], Any]]) -> int:
    """What the disk must still give these arrays: all of one not made yet, and what one made
    already (a prepare going on) has not taken."""
    total = 0
    for path, (shape, dtype) in arrays.items():
        try:
            taken = path.stat().st_blocks * 512  # st_blocks counts 512-byte units everywhere
        except FileNotFoundError:
            taken = 0
        total += max(0, npy_bytes(shape, dtype) - taken)
    return total


def check_room(folder: Path, needed: int) -> None:
    """Refuse, before anything is taken, arrays of `needed` bytes (and a margin) that the disk
    holding `folder` has no room for."""
    if needed == 0:
        return
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize  # what this user may take (root's reserve left out)
    wanted = needed + int(needed * MARGIN_SHARE) + MARGIN_BYTES
    if wanted > free:
        raise TochaError(
            f"{folder}: the prepared arrays need {needed:,} bytes ({wanted:,} with a margin) "
            f"and its disk has {free:,} free; nothing was written: free some space or prepare "
            "elsewhere"
        )


def open_array(path: Path, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The `.npy` file at `path` as a writable map: made at its full size, or reopened to go on
    (its header checked first: a file of another shape or type is refused, never loaded)."""
    if path.is_file():
        if problem := array_problem(path, np.dtype(dtype), tuple(shape)):
            raise TochaError(f"{path} {problem}; prepare into an empty folder")
        array = np.lib.format.open_memmap(path, mode="r+")
    else:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    reserve(path)  # again for a reopened one: a prepare killed as it made the file left it sparse
    return array


def reserve(path: Path) -> None:
    """Take the file's whole size on the disk now (see the module); where another writer took the
    room measured for it, one line."""
    size = path.stat().st_size
    try:
        with path.open("r+b") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise TochaError(
            f"{path.parent}: no room for {path.name} ({size:,} bytes) on its disk; free some "
            "space or prepare elsewhere"
        ) from None
