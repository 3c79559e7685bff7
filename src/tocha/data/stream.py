"""Reading your own `Dataset` item by item (`data.given`), and again every epoch with `--stream`.

A dataset is read once by default: its items are checked and held in memory, and tocha's loop trains
from them. A `__getitem__` with a random transform would then be frozen at its first draw, so a few
items are read twice and a dataset that answers differently is stopped, naming the item
(`check_repeatable`). With `--stream`, the training split is read again at the start of every epoch,
each item under a seed of its own (the run's seed, the epoch, its index: `item_seed`), so a random
transform draws anew each epoch and still gives the same items when the run is repeated or resumed
part-way through an epoch, whatever `--workers` reads them. The global random states (torch's,
Python's, NumPy's) are put back after a read, so the training's own draws (dropout) are untouched.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tocha.errors import TochaError

READ_BATCH = 256  # items a reading process hands over at a time
CHECKED_TWICE = 3  # items read a second time to see whether the dataset answers the same


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed item `index` is read under in `epoch` of a run seeded `seed` (epoch 0: the first read)."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + index) % (2**63)


def seed_all(value: int) -> None:
    # The CPU generator a transform draws from: torch.manual_seed would also queue a seed for every
    # CUDA device, recording a stack trace each time (65 µs an item, where this takes 1).
    torch.default_generator.manual_seed(value)
    random.seed(value)
    np.random.seed(value % 2**32)


@contextlib.contextmanager
def rng_kept() -> Iterator[None]:
    """torch's, Python's and NumPy's global random states as they were, whatever runs inside."""
    states = torch.random.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.random.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])


Reader = Callable[[Any, int], tuple[torch.Tensor, torch.Tensor]]  # (dataset, index) -> checked pair


class SeededItems(torch.utils.data.Dataset):
    """Items `indices` of `part`, read by `read` (under `item_seed` where `seed` is given): what the
    reading processes of `--workers` are handed."""

    def __init__(self, part: Any, indices: Sequence[int], read: Reader, seed: tuple[int, int] | None) -> None:
        self.part, self.indices, self.read, self.seed = part, indices, read, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[int, Any, Any]:
        i = int(self.indices[j])
        if self.seed is not None:
            seed_all(item_seed(*self.seed, i))
        try:
            x, y = self.read(self.part, i)
        except TochaError as e:  # handed back whole: a reading process's exception would be re-worded
            return i, e, None
        return i, x, y


def items(part: Any, indices: Sequence[int], read: Reader, *, seed: tuple[int, int] | None = None,
          workers: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:  # fmt: skip
    """(index, input, target) for each of `indices`, in order: read here, or by `workers` processes
    (PyTorch's DataLoader, forked, so your dataset needs no pickling); `seed`: (run seed, epoch)."""
    source = SeededItems(part, indices, read, seed)
    with rng_kept() if seed is not None else contextlib.nullcontext():  # seeded reads leave no trace
        if workers <= 0:
            batches: Any = ([source[j]] for j in range(len(source)))
        else:
            batches = torch.utils.data.DataLoader(
                source,
                batch_size=READ_BATCH,
                num_workers=workers,
                collate_fn=stacked,
                multiprocessing_context="fork",
            )
        for batch in batches:
            if isinstance(batch, tuple):  # stacked by the reading process: one tensor each, not one per item
                yield from zip(batch[0].tolist(), batch[1], batch[2], strict=True)
                continue
            for i, x, y in batch:
                if isinstance(x, TochaError):
                    raise x
                yield i, x, y


def stacked(batch: list[tuple[int, Any, Any]]) -> Any:
    """A reading process's batch as three tensors (indices, inputs, targets), which cross to this
    process at a fraction of the cost of one tensor an item; as it is where an item failed or the
    items differ in shape (its reader says which)."""
    if any(isinstance(x, TochaError) for _, x, _ in batch):
        return batch
    try:
        return (torch.tensor([i for i, _, _ in batch]), torch.stack([x for _, x, _ in batch]),
                torch.stack([y for _, _, y in batch]))  # fmt: skip
    except RuntimeError:  # shapes that differ: said item by item
        return batch


@dataclass
class Stream:
    """Where a streamed training split is read again from: the dataset, how an item is read and
    checked, the run's seed and the reading processes."""

    part: Any
    read: Reader
    seed: int
    workers: int = 0

    def read_again(self, origin: torch.Tensor, epoch: int, into: torch.Tensor, labels: torch.Tensor,
                   convert: Callable[[torch.Tensor], torch.Tensor]) -> None:  # fmt: skip
        """The training split's items (`origin`: their indices) read under epoch `epoch`'s seeds into
        `into` (its rows in that order), their targets checked against `labels`."""
        inputs: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        read = items(self.part, origin.tolist(), self.read, seed=(self.seed, epoch), workers=self.workers)
        for j, (_, x, y) in enumerate(read):
            inputs.append(x)
            targets.append(y)
            if len(inputs) == READ_BATCH or j == len(origin) - 1:
                start = j + 1 - len(inputs)
                into[start : j + 1] = convert(torch.stack(inputs)).to(into.device)
                changed = torch.stack(targets).to(labels.dtype) != labels[start : j + 1]
                if bool(changed.any()):
                    index = int(origin[start + int(changed.reshape(len(changed), -1).any(1).nonzero()[0])])
                    raise TochaError(f"train item {index}'s target changed from one epoch to the next")
                inputs, targets = [], []
