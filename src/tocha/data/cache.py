"""Decode once: decoded uint8 tensors are kept on disk, keyed by a fingerprint of their sources."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from tocha.data.paths import cache_dir
from tocha.files import atomic_torch_save

# Bump when the decoded layout changes so old cache entries are ignored, never misread.
CACHE_VERSION = 1


def fingerprint(*parts: object) -> str:
    """A short stable hash of the things that determine decoded content."""
    text = "\x1f".join(map(str, (CACHE_VERSION, *parts)))
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def file_stamp(path: Path) -> str:
    """Path, size and mtime: cheap to read and changes whenever the file does."""
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def cached_tensors(
    label: str, key: str, build: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Load `<cache>/decoded/<label>-<key>.pt`, or build, save atomically and return it."""
    path = cache_dir() / "decoded" / f"{label}-{key}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    tensors = build()
    try:
        atomic_torch_save(tensors, path)
    except OSError:
        pass  # a read-only cache only costs speed next time
    return tensors
