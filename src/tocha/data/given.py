"""Your own data, given in Python: a map-style `torch.utils.data.Dataset`, a pair `(train, test)`, a
mapping `{"train": ..., "val": ..., "test": ...}`, or tensors / NumPy arrays `(X, y)` and pairs and
mappings of those. Read once, item by item and checked as it is read, into the `LoadedData` every
run trains from, so the fast loop, the validation carve, the fingerprint, exact resume and `--nproc`
shares apply unchanged.

Items are `(input, target)`: the input an image-shaped tensor or array `(C, H, W)` or a row of
features `(F,)`, the target an integer class or a number (a regression). Inputs pass as given:
uint8 pixels are image bytes, normalised by the training split's mean and std as tocha's own readers
are; float inputs reach the model exactly as the user's transform made them (no normalisation unless
`mean`/`std` asks for one), rows as `(batch, F)`. A single dataset is split as image folders are
(seeded; stratified for classes), a given `val` is used as it is, otherwise the validation carve
applies (`data.load.with_validation`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sized
from pathlib import Path
from typing import Any

import torch

from tocha.config import DataConfig
from tocha.data.given_items import check_repeatable, is_array, is_pair_of_arrays, item, read_split
from tocha.data.splits import carve
from tocha.data.stream import Stream
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.tasks import AUTO, ClassificationTask, MultiLabelTask, RegressionTask, task_class

PREFIX = "python:"  # a run's data.name for data given in Python: `python:<the dataset's class>`
SPLITS = ("train", "val", "test")
Log = Callable[[str], None]


def is_given_name(name: str) -> bool:
    """Whether a run's data.name is data given in Python (`python:...`)."""
    return name.startswith(PREFIX)


def not_on_disk(name: str) -> TochaError:
    """Data given in Python (`python:...`) asked for by name: it is on no disk; how to give it again."""
    return TochaError(
        f"this run trained on data given in Python ({name}); tocha cannot read it again by name: give "
        "it again from Python (tocha.resume(run, data=...)), or name a dataset with --data"
    )


def is_given(value: Any) -> bool:
    """Whether `value` is data given in Python rather than a dataset's name or a file's path."""
    return value is not None and not isinstance(value, str | bytes | os.PathLike)


def given_name(data: Any) -> str:
    """What a run records as its data: `python:` and the dataset's class (`tensors` for arrays)."""
    first = splits_of(data)["train"]
    kind = "tensors" if is_pair_of_arrays(first) else type(first).__name__
    return PREFIX + kind


def is_dataset(value: Any) -> bool:
    indexable = getattr(type(value), "__getitem__", None) is not None  # a map-style Dataset's protocol
    return isinstance(value, Sized) and indexable and not is_array(value)


def splits_of(data: Any, where: str = "data=") -> dict[str, Any]:
    """{"train": ..., "val": ..., "test": ...} (those given) from any of the accepted forms."""
    if isinstance(data, Mapping):
        unknown = sorted(set(map(str, data)) - set(SPLITS))
        if unknown or "train" not in data:
            raise TochaError(
                f"{where}: a mapping of splits takes the keys train (needed), val and test; got "
                f"{sorted(data)}"
            )
        parts = {k: v for k, v in data.items() if v is not None}
    elif is_pair_of_arrays(data):
        parts = {"train": data}  # (X, y)
    elif isinstance(data, tuple | list) and len(data) == 2 and not isinstance(data[0], str):
        parts = {"train": data[0], "test": data[1]}  # (train, test)
    elif is_dataset(data):
        parts = {"train": data}
    else:
        raise TochaError(
            f"{where} takes a Dataset (with __len__ and __getitem__), a pair (train, test), a mapping "
            f"{{'train': ..., 'val': ..., 'test': ...}} or tensors (X, y); not {type(data).__name__}"
        )
    for split, part in parts.items():
        if not (is_pair_of_arrays(part) or is_dataset(part)):
            raise TochaError(
                f"{where}: the {split} split is {type(part).__name__}, not a Dataset or tensors (X, y)"
            )
    return parts


def inputs_of(inputs: torch.Tensor, split: str, where: str = "data=") -> torch.Tensor:
    """The inputs as a `TensorSet` holds them, (N, C, H, W): image-shaped `(C, H, W)` uint8 pixels as
    they are; floats as float32 and integers (token ids) as int64, `(F,)` as `(N, F, 1, 1)` (a value
    per channel, as a table's rows are held) and `(C, L)` as `(N, C, L, 1)`: the model takes each in
    the shape it was given (`LoadedData.item_shape`)."""
    shape = tuple(inputs.shape[1:])
    if len(shape) not in (1, 2, 3):
        raise TochaError(
            f"{where}: the inputs are {shape}; tocha takes inputs of one to three dimensions: rows or "
            "token ids (F,), signals (C, L), images (C, H, W) (a grayscale image of (H, W) gains its "
            "channel with x.unsqueeze(0) in __getitem__)"
        )
    if inputs.dtype == torch.uint8 and len(shape) == 3:
        return inputs
    if inputs.dtype == torch.bool or inputs.is_complex():
        raise TochaError(f"{where}: the inputs are {inputs.dtype}: give numbers (x.float() or x.long())")
    if inputs.is_floating_point():
        values = inputs.float()
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            index = int(bad.flatten(1).any(1).nonzero()[0])
            raise TochaError(f"{where}: {split} item {index}'s input holds NaN or infinity")
    else:
        values = inputs.long()  # integers reach the model as integers (an nn.Embedding's token ids)
    return values.reshape(len(values), *shape, *(1,) * (3 - len(shape)))


def task_of_targets(targets: torch.Tensor, asked: str, split: str, where: str = "data=") -> str:
    """The task the targets make (`asked`: `data.task`, `auto` or a task's name): an integer class
    classifies, a number or a vector of numbers (several outputs) regresses, a vector of K 0/1
    integers or booleans is a set of labels (multi-label)."""
    integers = targets.dtype == torch.bool or not targets.is_floating_point()
    if targets.ndim > 2 or (targets.ndim == 1 and targets.dtype == torch.bool):
        raise TochaError(
            f"{where}: the {split} targets are {targets.dtype} of shape {tuple(targets.shape[1:])}; tocha "
            "takes one integer class, one number, a vector of numbers (K,) or of 0/1 labels (K,) per item"
        )
    if asked != AUTO:
        task_class(asked)  # a task tocha knows
        return asked
    if targets.ndim == 2 and integers:
        return MultiLabelTask.name
    return (RegressionTask if targets.is_floating_point() else ClassificationTask).name


def labels_of(targets: torch.Tensor, task: str, split: str, where: str = "data=") -> torch.Tensor:
    """The targets as the task holds them: classes (a stratified task's) as (N,) int64, each at
    least 0; label sets as (N, K) float32 of 0 and 1; numbers as (N,) or (N, K) float32, each finite."""
    if task_class(task).stratified:
        if targets.is_floating_point() or targets.ndim != 1:
            raise TochaError(f"{where}: the {split} targets are {targets.dtype}: a {task} target is a class")
        labels = targets.long()
        if int(labels.min()) < 0:
            raise TochaError(f"{where}: {split} item {int((labels < 0).nonzero()[0])} has a negative class")
        return labels
    labels = targets.float()
    if task == MultiLabelTask.name:
        wrong = (
            (labels != 0) & (labels != 1)
            if labels.ndim == 2
            else torch.ones(len(labels), 1, dtype=torch.bool)
        )
        if bool(wrong.any()):
            index = int(wrong.reshape(len(labels), -1).any(1).nonzero()[0])
            raise TochaError(f"{where}: {split} item {index}'s target is not a vector of 0/1 labels (K,)")
        return labels
    if not bool(torch.isfinite(labels).all()):
        index = int((~torch.isfinite(labels)).reshape(len(labels), -1).any(1).nonzero()[0])
        raise TochaError(f"{where}: {split} item {index}'s target is NaN or infinity")
    return labels


def class_names(part: Any, count: int, where: str = "data=") -> list[str]:
    """The dataset's `classes` (as torchvision's datasets have them) when it has them, else 0..K-1."""
    names = getattr(part, "classes", None)
    if names is None:
        return [str(k) for k in range(count)]
    names = [str(n) for n in names]
    if len(names) < count:
        raise TochaError(f"{where}: the dataset names {len(names)} classes but its targets reach {count - 1}")
    return names


def where_of(name: str) -> str:
    """How errors name the data: `data=` given in Python, `--data FILE.py:NAME` from a file."""
    return "data=" if is_given_name(name) else f"--data {name}"


def load_given(data: Any, cfg: DataConfig, name: str, log: Log | None = print, seed: int = 0) -> LoadedData:
    """The data given in Python (or by a file: `data.code`) as one `LoadedData` (validation not yet
    carved: `with_validation`). `seed`: the run's, which `--stream` reads each item under."""
    started, where = time.perf_counter(), where_of(name)
    parts = splits_of(data, where)
    if cfg.stream and is_pair_of_arrays(parts["train"]):
        raise TochaError(f"{where}: --stream reads a Dataset again every epoch; tensors are read once")
    first = (seed, 0) if cfg.stream else None  # streamed: every split's first read seeded, item by item
    read = {s: read_split(part, s, log, where, seed=first, workers=cfg.workers) for s, part in parts.items()}
    if not cfg.stream:
        for split, part in parts.items():
            check_repeatable(part, read[split], split, where)
    task = task_of_targets(read["train"][1], cfg.task, "train", where)
    sets = {
        split: (inputs_of(x, split, where), labels_of(y, task, split, where))
        for split, (x, y) in read.items()
    }
    shapes = {split: (tuple(x.shape[1:]), x.dtype, tuple(y.shape[1:])) for split, (x, y) in sets.items()}
    if len(set(shapes.values())) > 1:
        said = ", ".join(f"{s} {shape} {dtype} -> {target}" for s, (shape, dtype, target) in shapes.items())
        raise TochaError(f"{where}: the splits differ ({said}): every split needs one shape and dtype")
    x, y = read["train"]
    item_shape, pixels = tuple(x.shape[1:]), x.dtype == torch.uint8 and x.ndim == 4
    if not pixels and (cfg.augment_flip or cfg.augment_translate or cfg.augment != "none"):
        raise TochaError(
            f"{where}: the inputs are {item_shape} {str(x.dtype).removeprefix('torch.')}, not image "
            "bytes: tocha's augmentations are for images; leave them out"
        )
    stratified = task_class(task).stratified  # a task of classes: named, and kept in each split's share
    if stratified:
        classes = class_names(parts["train"], max(int(y.max()) for _, y in sets.values()) + 1, where)
    elif task == MultiLabelTask.name:  # the labels' names, as the classes' are
        classes = class_names(parts["train"], y.shape[1], where)
    else:
        outputs = 1 if y.ndim == 1 else y.shape[1]
        classes = ["target"] if outputs == 1 else [f"target{k}" for k in range(outputs)]
    origin = torch.arange(len(sets["train"][0])) if cfg.stream else None  # which item each sample is
    train = TensorSet(*sets["train"], origin)
    test = TensorSet(*sets["test"]) if "test" in sets else None
    if test is None:  # split as an image folder is: a seeded share held out (stratified for classes)
        keep, held = carve(train.labels.numpy(), cfg.test_fraction, cfg.split_seed, stratified,
                           where=name, names=classes)  # fmt: skip
        train, test = train.take(keep), train.take(held)
    val = TensorSet(*sets["val"]) if "val" in sets else None
    integer = not x.is_floating_point() and not pixels
    low, high = (
        (int(x.min()), int(x.max())) if not x.is_floating_point() else (float(x.min()), float(x.max()))
    )
    if pixels:
        how = "image bytes, normalised by the training split's mean and std (as tocha's own readers)"
    elif integer:
        how = "passed to the model as integers (int64), as given"
    else:
        how = "passed to the model as given (no normalisation; --mean and --std set one)"
    named = (("train", train), ("val", val), ("test", test))
    counts = ", ".join(f"{len(s):,} {split}" for split, s in named if s is not None)
    dtype = str(x.dtype).removeprefix("torch.")
    if stratified:
        targets = f"{len(classes)} classes"
    elif task == MultiLabelTask.name:
        targets = f"sets of {len(classes)} labels (multilabel)"
    else:
        targets = f"{len(classes)} numbers each ({task})" if len(classes) > 1 else f"numbers ({task})"
    given = "given in Python" if where == "data=" else f"given by {Path(name.rpartition(':')[0]).name}"
    source = f"{given}: {counts} items of {item_shape} {dtype}, {low:.4g}..{high:.4g}, {targets}"
    if log is not None:
        log(f"{name}: {source}, read once into memory in {time.perf_counter() - started:.1f} s; {how}")
    return LoadedData(
        name=name,
        classes=classes,
        train=train,
        test=test,
        source=source,
        details={
            "as_given": not pixels,
            "rows": len(item_shape) == 1,
            "shape": list(item_shape),
            "stream": Stream(
                parts["train"], functools.partial(item, split="train", where=where), seed, cfg.workers
            )
            if cfg.stream
            else None,
        },  # fmt: skip
        task=task,
        val=val,
        val_source="the val split given" if val is not None else "",
    )


def as_given_normalization(channels: int) -> tuple[list[float], list[float]]:
    """The normalisation of inputs passed as given: none (mean 0, std 1 leaves each value exact)."""
    return [0.0] * channels, [1.0] * channels
