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

import os
import time
from collections.abc import Callable, Mapping, Sized
from typing import Any

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.progress import stage
from tocha.data.splits import carve
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError, one_line
from tocha.tasks import AUTO, ClassificationTask, RegressionTask, task_class

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


def is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor | np.ndarray)


def is_pair_of_arrays(value: Any) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and all(is_array(v) for v in value)


def is_dataset(value: Any) -> bool:
    indexable = getattr(type(value), "__getitem__", None) is not None  # a map-style Dataset's protocol
    return isinstance(value, Sized) and indexable and not is_array(value)


def splits_of(data: Any) -> dict[str, Any]:
    """{"train": ..., "val": ..., "test": ...} (those given) from any of the accepted forms."""
    if isinstance(data, Mapping):
        unknown = sorted(set(map(str, data)) - set(SPLITS))
        if unknown or "train" not in data:
            raise TochaError(
                f"data=: a mapping of splits takes the keys train (needed), val and test; got {sorted(data)}"
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
            f"data= takes a Dataset (with __len__ and __getitem__), a pair (train, test), a mapping "
            f"{{'train': ..., 'val': ..., 'test': ...}} or tensors (X, y); not {type(data).__name__}"
        )
    for split, part in parts.items():
        if not (is_pair_of_arrays(part) or is_dataset(part)):
            raise TochaError(
                f"data=: the {split} split is {type(part).__name__}, not a Dataset or tensors (X, y)"
            )
    return parts


def read_split(part: Any, split: str, log: Log | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's inputs (N, ...) and targets (N, ...), checked as they are read: every item a pair,
    every input of item 0's shape and dtype, every target of item 0's kind, none missing (what the
    inputs and targets may be is `images_of`'s and `labels_of`'s to check)."""
    if is_pair_of_arrays(part):
        inputs, targets = (torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v for v in part)
        if len(inputs) != len(targets):
            raise TochaError(f"data=: the {split} split has {len(inputs)} inputs and {len(targets)} targets")
        if len(inputs) == 0:
            raise TochaError(f"data=: the {split} split is empty")
        return inputs, targets
    try:
        n = len(part)
    except Exception as e:
        raise TochaError(f"data=: the {split} split's len() failed: {one_line(e)}") from e
    if n == 0:
        raise TochaError(f"data=: the {split} split is empty")
    first_input, first_target = item(part, 0, split)
    inputs = torch.empty((n, *first_input.shape), dtype=first_input.dtype)
    targets = torch.empty((n, *first_target.shape), dtype=first_target.dtype)
    with stage(f"reading the {split} split", n, "item", log) as bar:
        for i in range(n):
            x, y = (first_input, first_target) if i == 0 else item(part, i, split)
            if x.shape != first_input.shape or x.dtype != first_input.dtype:
                raise TochaError(
                    f"data=: {split} item {i}'s input is {tuple(x.shape)} {x.dtype}; item 0's was "
                    f"{tuple(first_input.shape)} {first_input.dtype}: every input needs one shape and dtype"
                )
            if y.shape != first_target.shape or y.is_floating_point() != first_target.is_floating_point():
                raise TochaError(
                    f"data=: {split} item {i}'s target is {y.dtype} {tuple(y.shape)}; item 0's was "
                    f"{first_target.dtype} {tuple(first_target.shape)}: targets must be of one kind"
                )
            inputs[i], targets[i] = x, y
            bar.advance(1)
    return inputs, targets


def item(part: Any, i: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Item `i` of a dataset as two tensors, or an error naming the item."""
    try:
        got = part[i]
    except IndexError as e:
        raise TochaError(
            f"data=: {split} item {i} does not exist though len() says {len(part)}: {one_line(e)}"
        ) from e
    except Exception as e:
        raise TochaError(f"data=: reading {split} item {i} failed: {one_line(e)}") from e
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise TochaError(
            f"data=: {split} item {i} is {type(got).__name__}, not a pair (input, target) as "
            "__getitem__ returns them"
        )
    try:
        x, y = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in got)
    except Exception as e:
        raise TochaError(f"data=: {split} item {i} is not made of tensors or numbers: {one_line(e)}") from e
    return x, y


def images_of(inputs: torch.Tensor, split: str) -> torch.Tensor:
    """The inputs as a `TensorSet` holds them: image-shaped `(C, H, W)` uint8 pixels as they are,
    floats as float32; feature rows `(F,)` of floats as `(N, F, 1, 1)` (a feature per channel, as a
    table's rows are held; the model takes them as `(N, F)`)."""
    shape = tuple(inputs.shape[1:])
    if len(shape) not in (1, 3):
        raise TochaError(
            f"data=: the inputs are {shape}; tocha takes image-shaped inputs (C, H, W) and feature "
            "rows (F,) from Python now (a grayscale image of (H, W) gains its channel with "
            "x.unsqueeze(0) in __getitem__)"
        )
    if inputs.dtype == torch.uint8 and len(shape) == 3:
        return inputs
    if not inputs.is_floating_point():
        what = "uint8 pixels or floats" if len(shape) == 3 else "floats (integer token ids come later)"
        raise TochaError(f"data=: the inputs are {shape} {inputs.dtype}; {len(shape)}-d inputs are {what}")
    images = inputs.float()
    bad = ~torch.isfinite(images)
    if bool(bad.any()):
        index = int(bad.flatten(1).any(1).nonzero()[0])
        raise TochaError(f"data=: {split} item {index}'s input holds NaN or infinity")
    return images[:, :, None, None] if len(shape) == 1 else images


def task_of_targets(targets: torch.Tensor, asked: str, split: str) -> str:
    """The task the targets make (`asked`: `data.task`, `auto` or a task's name): integer classes
    classify, numbers regress; one value per item."""
    if targets.ndim != 1 or targets.dtype == torch.bool:
        raise TochaError(
            f"data=: the {split} targets are {targets.dtype} of shape {tuple(targets.shape[1:])}; tocha "
            "takes one integer class or one number per item from Python now"
        )
    if asked != AUTO:
        task_class(asked)  # a task tocha knows
        return asked
    return (RegressionTask if targets.is_floating_point() else ClassificationTask).name


def labels_of(targets: torch.Tensor, task: str, split: str) -> torch.Tensor:
    """The targets as the task holds them: classes (a stratified task's) as (N,) int64, each at
    least 0; numbers as (N,) float32, each finite."""
    if task_class(task).stratified:
        if targets.is_floating_point():
            raise TochaError(f"data=: the {split} targets are {targets.dtype}: a {task} target is a class")
        labels = targets.long()
        if int(labels.min()) < 0:
            raise TochaError(f"data=: {split} item {int((labels < 0).nonzero()[0])} has a negative class")
        return labels
    labels = targets.float()
    if not bool(torch.isfinite(labels).all()):
        index = int((~torch.isfinite(labels)).nonzero()[0])
        raise TochaError(f"data=: {split} item {index}'s target is NaN or infinity")
    return labels


def class_names(part: Any, count: int) -> list[str]:
    """The dataset's `classes` (as torchvision's datasets have them) when it has them, else 0..K-1."""
    names = getattr(part, "classes", None)
    if names is None:
        return [str(k) for k in range(count)]
    names = [str(n) for n in names]
    if len(names) < count:
        raise TochaError(f"data=: the dataset names {len(names)} classes but its targets reach {count - 1}")
    return names


def load_given(data: Any, cfg: DataConfig, name: str, log: Log | None = print) -> LoadedData:
    """The data given in Python as one `LoadedData` (validation not yet carved: `with_validation`)."""
    started = time.perf_counter()
    parts = splits_of(data)
    read = {split: read_split(part, split, log) for split, part in parts.items()}
    task = task_of_targets(read["train"][1], cfg.task, "train")
    sets = {split: (images_of(x, split), labels_of(y, task, split)) for split, (x, y) in read.items()}
    shapes = {split: (tuple(x.shape[1:]), x.dtype) for split, (x, _) in sets.items()}
    if len(set(shapes.values())) > 1:
        said = ", ".join(f"{s} {shape} {dtype}" for s, (shape, dtype) in shapes.items())
        raise TochaError(f"data=: the splits' inputs differ ({said}): every split needs one shape and dtype")
    rows = read["train"][0].ndim == 2
    if rows and (cfg.augment_flip or cfg.augment_translate or cfg.augment != "none"):
        raise TochaError("data=: feature rows (F,) are not images: leave out the augmentation")
    stratified = task_class(task).stratified  # a task of classes: named, and kept in each split's share
    if stratified:
        classes = class_names(parts["train"], max(int(y.max()) for _, y in sets.values()) + 1)
    else:
        classes = ["target"]
    train = TensorSet(*sets["train"])
    test = TensorSet(*sets["test"]) if "test" in sets else None
    if test is None:  # split as an image folder is: a seeded share held out (stratified for classes)
        keep, held = carve(train.labels.numpy(), cfg.test_fraction, cfg.split_seed, stratified,
                           where=name, names=classes)  # fmt: skip
        train, test = train.take(keep), train.take(held)
    val = TensorSet(*sets["val"]) if "val" in sets else None
    x = read["train"][0]
    pixels = x.dtype == torch.uint8
    low, high = (int(x.min()), int(x.max())) if pixels else (float(x.min()), float(x.max()))
    how = (
        "image bytes, normalised by the training split's mean and std (as tocha's own readers)"
        if pixels
        else "passed to the model as given (no normalisation; --mean and --std set one)"
    )
    named = (("train", train), ("val", val), ("test", test))
    counts = ", ".join(f"{len(s):,} {split}" for split, s in named if s is not None)
    dtype = str(x.dtype).removeprefix("torch.")
    targets = f"{len(classes)} classes" if stratified else f"numbers ({task})"
    source = (
        f"given in Python: {counts} items of {tuple(x.shape[1:])} {dtype}, {low:.4g}..{high:.4g}, {targets}"
    )
    if log is not None:
        log(f"{name}: {source}, read once into memory in {time.perf_counter() - started:.1f} s; {how}")
    return LoadedData(
        name=name,
        classes=classes,
        train=train,
        test=test,
        source=source,
        details={"as_given": not pixels, "rows": rows},
        task=task,
        val=val,
        val_source="the val split given" if val is not None else "",
    )


def as_given_normalization(channels: int) -> tuple[list[float], list[float]]:
    """The normalisation of inputs passed as given: none (mean 0, std 1 leaves each value exact)."""
    return [0.0] * channels, [1.0] * channels
