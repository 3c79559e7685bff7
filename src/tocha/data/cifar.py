"""Reader for the official CIFAR-10 python version (`cifar-10-python.tar.gz`).

The batches are Python pickles. Unpickling can run code, so a restricted unpickler admits only
the few NumPy functions an array needs; anything else in the stream is refused.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from tocha.errors import TochaError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles; pure, runs nothing
    ("numpy.core.numeric", "_frombuffer"),  # protocol-5 arrays
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    try:
        batch = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any malformed stream is the file's fault, reported as such
        raise TochaError(f"{name}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise TochaError(f"{name}: not a CIFAR-10 batch (no data/labels entries)")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise TochaError(f"{name}: data is not a uint8 (N, 3072) array")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise TochaError(f"{name}: labels are not integers") from e
    if labels.shape != (len(data),):
        raise TochaError(f"{name}: {len(data)} images but {labels.size} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_members(source: Path, names: list[str]) -> dict[str, bytes]:
    """Batch files by name, from the tarball or from an extracted `cifar-10-batches-py` folder."""
    if source.is_dir():
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise TochaError(f"{source}: missing {', '.join(missing)}")
        return {n: (source / n).read_bytes() for n in names}
    out = {}
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in names and member.isfile():
                    out[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise TochaError(f"{source}: not a readable tar archive ({e})") from e
    missing = [n for n in names if n not in out]
    if missing:
        raise TochaError(f"{source}: archive lacks {', '.join(missing)}")
    return out


def read_cifar10(source: Path) -> dict[str, np.ndarray]:
    """train/test images and labels from the official archive or its extracted folder."""
    raw = _read_members(source, TRAIN_BATCHES + TEST_BATCHES)
    out = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        parts = [parse_batch(raw[n], f"{source}:{n}") for n in names]
        out[f"{split}_images"] = np.concatenate([p[0] for p in parts])
        out[f"{split}_labels"] = np.concatenate([p[1] for p in parts])
    return out
