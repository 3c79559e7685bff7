"""Your own data's splits read item by item (`data.given`): each item checked as it is read (a
pair, one shape and dtype, targets of one kind, none missing, `__getitem__`'s errors named by index),
and a dataset read once checked to answer the same each time (`check_repeatable`); read here or by
`--workers` processes, each item under its own seed with `--stream` (`data.stream`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tocha.data.progress import stage
from tocha.data.stream import CHECKED_TWICE, items
from tocha.errors import TochaError, one_line

Log = Callable[[str], None]


def is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor | np.ndarray)


def is_pair_of_arrays(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and all(is_array(v) for v in value)


Pair = tuple[torch.Tensor, torch.Tensor]  # a split's inputs and targets


def read_split(part: Any, split: str, log: Log | None, where: str = "data=", *,
               seed: tuple[int, int] | None = None, workers: int = 0) -> Pair:  # fmt: skip
    """A split's inputs (N, ...) and targets (N, ...), checked as they are read: every item a pair,
    every input of item 0's shape and dtype, every target of item 0's kind, none missing (what the
    inputs and targets may be is `inputs_of`'s and `labels_of`'s to check). `seed`: (run seed,
    epoch), each item read under a seed of its own (`data.stream`); `workers`: reading processes."""
    if is_pair_of_arrays(part):
        inputs, targets = (torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v for v in part)
        if len(inputs) != len(targets):
            raise TochaError(
                f"{where}: the {split} split has {len(inputs)} inputs and {len(targets)} targets"
            )
        if len(inputs) == 0:
            raise TochaError(f"{where}: the {split} split is empty")
        return inputs, targets
    try:
        n = len(part)
    except Exception as e:
        raise TochaError(f"{where}: the {split} split's len() failed: {one_line(e)}") from e
    if n == 0:
        raise TochaError(f"{where}: the {split} split is empty")
    inputs = targets = torch.empty(0)
    read = functools.partial(item, split=split, where=where)
    with stage(f"reading the {split} split", n, "item", log) as bar:
        for i, x, y in items(part, range(n), read, seed=seed, workers=workers):
            if i == 0:
                inputs = torch.empty((n, *x.shape), dtype=x.dtype)
                targets = torch.empty((n, *y.shape), dtype=y.dtype)
            if x.shape != inputs.shape[1:] or x.dtype != inputs.dtype:
                raise TochaError(
                    f"{where}: {split} item {i}'s input is {tuple(x.shape)} {x.dtype}; item 0's was "
                    f"{tuple(inputs.shape[1:])} {inputs.dtype}: every input needs one shape and dtype"
                )
            if y.shape != targets.shape[1:] or y.is_floating_point() != targets.is_floating_point():
                raise TochaError(
                    f"{where}: {split} item {i}'s target is {y.dtype} {tuple(y.shape)}; item 0's was "
                    f"{targets.dtype} {tuple(targets.shape[1:])}: targets must be of one kind"
                )
            inputs[i], targets[i] = x, y
            bar.advance(1)
    return inputs, targets


def check_repeatable(part: Any, read: tuple[torch.Tensor, torch.Tensor], split: str, where: str) -> None:
    """A dataset read once must answer the same each time: a few items read again, and one that
    differs (a random transform in `__getitem__`, frozen at its first draw if read once) stopped."""
    if is_pair_of_arrays(part):
        return
    n = len(read[0])
    for i in sorted({0, n // 2, n - 1})[:CHECKED_TWICE]:
        x, y = item(part, i, split, where)
        if not (same(x, read[0][i]) and same(y.to(read[1].dtype), read[1][i])):
            raise TochaError(
                f"{where}: {split} item {i} differs from one read to the next (a random transform in "
                "__getitem__?); read once, its randomness would be frozen at its first draw: move it to "
                "tocha's --augment (flips, shifts, crops, on the device), or give --stream (stream=True) "
                "to read the training split again every epoch"
            )


def item(part: Any, i: int, split: str, where: str = "data=") -> tuple[torch.Tensor, torch.Tensor]:
    """Item `i` of a dataset as two tensors, or an error naming the item."""
    try:
        got = part[i]
    except IndexError as e:
        raise TochaError(
            f"{where}: {split} item {i} does not exist though len() says {len(part)}: {one_line(e)}"
        ) from e
    except Exception as e:
        raise TochaError(f"{where}: reading {split} item {i} failed: {one_line(e)}") from e
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise TochaError(
            f"{where}: {split} item {i} is {type(got).__name__}, not a pair (input, target) as "
            "__getitem__ returns them"
        )
    try:
        x, y = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in got)
    except Exception as e:
        raise TochaError(f"{where}: {split} item {i} is not made of tensors or numbers: {one_line(e)}") from e
    return x, y


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal, value for value, a NaN equal to a NaN (which `inputs_of` refuses, naming the item)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else torch.equal(a, b)
