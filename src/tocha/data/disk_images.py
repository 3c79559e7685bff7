"""Training images that stay on disk: a prepared folder's memory-mapped `train_images.npy`, read a
batch at a time (`--in-memory no`, or `auto` when the split would not fit).

A batch's rows are read in ascending order (the pages of the file in order, which is what disks and
the page cache are fast at), then put back in the batch's own order: the batch is exactly the one
the in-memory path gathers, so a run reads the same numbers either way. A subset (the rows left
for training after the validation carve, or `--train-limit`) is a view: an array of row numbers,
no copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch


class DiskImages:
    """Images (N, C, H, W) in a `.npy` file (uint8 pixels, or a prepared table's float32 rows as
    (N, F, 1, 1)), as much of a tensor as the batches need."""

    ndim = 4
    device = torch.device("cpu")

    def __init__(self, path: Path, rows: np.ndarray | None = None, sha256: str = "") -> None:
        self.path, self.sha256 = Path(path), sha256  # the file's recorded digest: what the run trains on
        self.array = np.load(self.path, mmap_mode="r")
        self.rows = np.arange(len(self.array)) if rows is None else np.asarray(rows, dtype=np.int64)

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.empty(0, dtype=self.array.dtype)).dtype

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.array.shape[1:])

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, index: torch.Tensor | np.ndarray) -> DiskImages:
        """The subset at `index` (positions in this one): a view, not a copy."""
        positions = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        return DiskImages(self.path, self.rows[positions], self.sha256)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        """The images at `index`, in its order, read from the file in ascending row order."""
        assert dim == 0
        wanted = self.rows[index.cpu().numpy()]
        order = np.argsort(wanted, kind="stable")
        batch = np.empty((len(wanted), *self.array.shape[1:]), dtype=self.array.dtype)
        batch[order] = self.array[wanted[order]]
        return torch.from_numpy(batch)

    def to(self, _device: object) -> DiskImages:
        """Stays on disk: each batch goes to the device as it is read."""
        return self

    def in_memory(self) -> torch.Tensor:
        """The subset read whole (what a validation split carved from it becomes)."""
        return self.index_select(0, torch.arange(len(self.rows)))

    def chunks(self, size: int = 4096) -> Iterator[torch.Tensor]:
        """The images in order, `size` at a time (for statistics over the whole split)."""
        for start in range(0, len(self.rows), size):
            yield self.index_select(0, torch.arange(start, min(start + size, len(self.rows))))

    def digest(self) -> str:
        """What these images are without reading them: the file's recorded SHA-256 and the rows."""
        return hashlib.blake2b(self.sha256.encode() + self.rows.tobytes(), digest_size=20).hexdigest()
