"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

The format (yann.lecun.com/exdb/mnist): a big-endian header of magic 0x00 0x00 TYPE NDIM, then
NDIM uint32 dimension sizes, then the payload. Only the unsigned-byte type (0x08) is used by the
datasets here, so only it is accepted.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from tocha.errors import TochaError

_UBYTE = 0x08


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array of the header's shape; errors name `name`."""
    if len(raw) < 4:
        raise TochaError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    zero1, zero2, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or dtype != _UBYTE or not 1 <= ndim <= 4:
        raise TochaError(
            f"{name}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, expected 000008 then 01-04)"
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise TochaError(f"{name}: header cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    # Compare sizes before allocating anything, so a lying header cannot ask for gigabytes.
    expected = math.prod(shape)  # Python ints: a huge header cannot overflow to a small number
    actual = len(raw) - header_end
    if expected != actual:
        raise TochaError(
            f"{name}: header says shape {tuple(shape)} ({expected} bytes) but the payload has {actual} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gunzipping it when its name ends in `.gz`."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise TochaError(f"cannot read {path}: {e}") from e
    return parse_idx(raw, str(path))


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) uint8 and labels (N,) uint8 from a pair of IDX files, counts checked."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise TochaError(f"{images_path}: expected 3 dimensions (N, H, W), found {images.ndim}")
    if labels.ndim != 1:
        raise TochaError(f"{labels_path}: expected 1 dimension (N,), found {labels.ndim}")
    if len(images) != len(labels):
        raise TochaError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return images[:, None], labels
