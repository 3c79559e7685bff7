"""Decode once: decoded tensors are kept on disk, keyed by a fingerprint of their sources, and
verified every time they are read.

torch does not check a saved file's zip CRCs, so a flipped byte inside a cached tensor would load
without complaint: each entry carries a BLAKE2b digest of its tensors' bytes (and their names,
dtypes and shapes), recomputed at load. A damaged or malformed entry is rebuilt from the sources with
a warning, never trained on; a failed cache write costs speed next time, never the run.

Sources are keyed by path, size and modification time (cheap); `TOCHA_CACHE_BY_CONTENT=1` keys them
by their bytes instead, for files that can change without either.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from tocha.config_fields import brief
from tocha.data.paths import cache_dir
from tocha.files import TMP_PREFIX, atomic_torch_save, regular_file

# Bump when the decoded layout changes so old cache entries are ignored, never misread.
# 2: entries are {"tensors": ..., "digest": ...}. 3: the digest covers the entry's key too.
CACHE_VERSION = 3
BY_CONTENT_ENV = "TOCHA_CACHE_BY_CONTENT"


def fingerprint(*parts: object) -> str:
    """A short stable hash of the things that determine decoded content."""
    text = "\x1f".join(map(str, (CACHE_VERSION, *parts)))
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def file_stamp(path: Path) -> str:
    """Path, size and mtime: cheap to read and changes whenever the file does (or, with
    TOCHA_CACHE_BY_CONTENT=1, the SHA-1 of its bytes)."""
    if os.environ.get(BY_CONTENT_ENV) == "1":
        return f"{path.resolve()}:{hashlib.sha1(path.read_bytes()).hexdigest()}"
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def digest(tensors: dict[str, torch.Tensor], key: str = "") -> str:
    """BLAKE2b of `key` (which entry, from which sources) and every tensor's name, dtype, shape and
    bytes, in name order: an entry's tensors copied under another entry's name do not pass."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{key}|".encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()


def read_entry(path: Path) -> dict[str, torch.Tensor] | None:
    """The verified tensors of a cache entry, or None (with a warning) when it is damaged or holds
    another entry's tensors (its digest is bound to its name: the dataset and its sources' key)."""
    try:
        regular_file(path, "cache entry")
        entry = torch.load(path, weights_only=True)
        tensors = entry["tensors"]
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
            raise ValueError("not a mapping of names to tensors")
        if entry.get("key") != path.stem:
            raise ValueError(f"it holds the entry {brief(entry.get('key'))}, not {path.stem}")
        if digest(tensors, path.stem) != entry["digest"]:
            raise ValueError("its content does not match its digest")
        check_layout(tensors)
        return tensors
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is rebuilt, never trusted
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(
            f"tocha: warning: the decoded cache entry {path} is damaged ({reason}): rebuilding it",
            file=sys.stderr,
        )
        path.unlink(missing_ok=True)
        return None


def check_layout(tensors: dict[str, torch.Tensor]) -> None:
    """What every decoded dataset is: uint8 images (N, C, H, W) and as many int64 labels per split
    (train, test, and val where the source has its own)."""
    for split in ("train", "test", *(["val"] if "val_images" in tensors else [])):
        images, labels = tensors[f"{split}_images"], tensors[f"{split}_labels"]
        if images.dtype != torch.uint8 or images.ndim != 4 or labels.dtype != torch.int64:
            raise ValueError(f"{split}: {images.dtype} images {tuple(images.shape)}, {labels.dtype} labels")
        if labels.shape != (len(images),):
            raise ValueError(f"{split}: {len(images)} images, labels {tuple(labels.shape)}")
    if tensors["train_images"].shape[1:] != tensors["test_images"].shape[1:]:
        raise ValueError("train and test images differ in shape")


def cached_tensors(
    label: str, key: str, build: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Load `<cache>/decoded/<label>-<key>.pt` (verified), or build, save atomically and return it."""
    path = cache_dir() / "decoded" / f"{label}-{key}.pt"
    if path.exists() and (tensors := read_entry(path)) is not None:
        return tensors
    tensors = build()
    try:
        remove_stale_temp_files(path.parent)
        atomic_torch_save({"tensors": tensors, "key": path.stem, "digest": digest(tensors, path.stem)}, path)
    except (OSError, RuntimeError) as e:  # a full or read-only cache only costs speed next time
        print(
            f"tocha: warning: could not keep decoded {label} data in {path.parent} ({e}); "
            "it will be decoded again next time",
            file=sys.stderr,
        )
    return tensors


def remove_stale_temp_files(folder: Path, older_than: float = 3600.0) -> None:
    """Unfinished cache writes of killed processes: removed once an hour old (a live writer
    finishes far sooner, so one still being written is never touched)."""
    import time

    if not folder.is_dir():
        return
    for path in folder.glob(TMP_PREFIX + "*"):
        try:
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink()
        except OSError:
            pass
