"""`tocha data prepare FILE.py:NAME`: your own data's images (`data.code`), too many to hold in
memory, written item by item into a prepared folder (`data.prepare` writes it, `data.prepared`
reads it), so a run trains from the disk a batch at a time (`--in-memory no`) with every guarantee.

The items are image bytes, `(C, H, W)` uint8 with one or three channels, as the prepared format holds
them; a dataset's targets are read first (one pass, the images let go of), to carve a held-out test
split as training would, seeded and stratified, where the data names none. Named on this command
line, the file is imported as `--data FILE.py:NAME` imports it (`models.code_trust`: named here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.code import opened
from tocha.data.given import class_names, splits_of, where_of
from tocha.data.given_items import is_pair_of_arrays, item
from tocha.data.progress import stage
from tocha.data.splits import carve
from tocha.errors import TochaError
from tocha.models.code_trust import CodeTrust

Log = Callable[[str], None]


class Pairs(torch.utils.data.Dataset):
    """Tensors `(X, y)` read an item at a time, as a Dataset is."""

    def __init__(self, inputs: Any, targets: Any) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        return self.inputs[i], self.targets[i]


def given_plan(source: str, args: dict[str, Any] | None, *, test_fraction: float, split_seed: int,
               log: Log) -> dict[str, Any]:  # fmt: skip
    """What a prepare of your data's file writes, decided before anything is: each split's items
    (indices into its dataset) and labels, the classes, the mode and size."""
    record, data = opened(DataConfig(name=source, args=args), CodeTrust.NAMED)
    where = where_of(source)
    parts = {s: Pairs(*p) if is_pair_of_arrays(p) else p for s, p in splits_of(data, where).items()}
    first, _ = item(parts["train"], 0, "train", where)
    if first.dtype != torch.uint8 or first.ndim != 3 or first.shape[0] not in (1, 3):
        raise TochaError(
            f"{where}: tocha data prepare writes image bytes, (C, H, W) uint8 with 1 or 3 channels; its "
            f"items are {tuple(first.shape)} {str(first.dtype).removeprefix('torch.')}: train from it "
            f"in memory (--data {source})"
        )
    labels = {split: targets_of(part, split, where, log) for split, part in parts.items()}
    classes = class_names(parts["train"], max(int(y.max()) for y in labels.values()) + 1, where)
    chosen = {split: np.arange(len(y)) for split, y in labels.items()}
    rule = None
    if "test" not in parts:  # held out as training holds it out: seeded, stratified by class
        keep, held = carve(labels["train"], test_fraction, split_seed, True, where=source, names=classes)
        parts["test"], chosen["train"], chosen["test"] = parts["train"], keep, held
        labels["test"] = labels["train"]
        rule = {"test_fraction": test_fraction, "split_seed": split_seed}
    record_text = json.dumps({"sha256": record.file_sha256, "args": record.args, "sources": record.sources})
    order = [s for s in ("train", "test", "val") if s in parts]
    return {
        "kind": "given",
        "source": source,
        "source_digest": hashlib.sha256(record_text.encode()).hexdigest(),
        "classes": classes,
        "mode": "L" if first.shape[0] == 1 else "RGB",
        "size": list(first.shape[1:]),
        "split_rule": rule,
        "given": {s: (parts[s], chosen[s], labels[s][chosen[s]]) for s in order},
    }


def targets_of(part: Any, split: str, where: str, log: Log) -> np.ndarray:
    """A split's classes, read item by item (each image let go of at once)."""
    labels = np.empty(len(part), dtype=np.int64)
    with stage(f"reading the {split} split's labels", len(part), "item", log) as bar:
        for i in range(len(part)):
            _, y = item(part, i, split, where)
            if y.ndim != 0 or y.is_floating_point() or int(y) < 0:
                raise TochaError(
                    f"{where}: {split} item {i}'s target is {y.tolist()!r}, not a class (0..K-1)"
                )
            labels[i] = int(y)
            bar.advance(1)
    return labels


def given_chunks(plan: dict[str, Any], split: str, starts: list[int], size: int) -> Iterator[tuple]:
    """(start, images, labels) of each chunk of `size`: its items read, each checked to be of the
    first item's shape."""
    part, chosen, labels = plan["given"][split]
    channels = 1 if plan["mode"] == "L" else 3
    shape = (channels, *plan["size"])
    where = where_of(plan["source"])
    for start in starts:
        images = np.empty((min(size, len(chosen) - start), *shape), dtype=np.uint8)
        for j, i in enumerate(chosen[start : start + size]):
            x, _ = item(part, int(i), split, where)
            if tuple(x.shape) != shape or x.dtype != torch.uint8:
                raise TochaError(
                    f"{where}: {split} item {int(i)}'s input is {tuple(x.shape)} {x.dtype}; item 0's was "
                    f"{shape} torch.uint8: every input needs one shape and dtype"
                )
            images[j] = x.numpy()
        yield start, images, labels[start : start + size]
