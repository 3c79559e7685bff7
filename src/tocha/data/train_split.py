"""The training split as a run uses it: the validation carved from it (`data.splits`), `--train-limit`
(N training samples, the validation carved in proportion to them) and `--overfit-batches`."""

from __future__ import annotations

import dataclasses
import math

import torch

from tocha.config import DataConfig
from tocha.data.splits import carve, carve_rule, limited_draw
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.tasks import task_class


def for_training(data: LoadedData, cfg: DataConfig) -> LoadedData:
    """The validation carve and `--train-limit N`: N training samples, and a validation split carved
    in proportion to them (`val_fraction` of the samples the run uses, as without a limit), from a
    seeded draw of the training split that holds both (`limited_draw`)."""
    total, limit = len(data.train), cfg.train_limit
    if limit is not None and data.val is None and cfg.val_fraction > 0:
        rounding = len(data.classes) if task_class(data.task).stratified else 1
        drawn = limited_draw(limit, cfg.val_fraction, total, rounding, data.name)
        data = limit_train(data, drawn, cfg.split_seed, said=False)
    data = with_validation(data, cfg.val_fraction, cfg.val_seed)
    return data if limit is None else limit_train(data, limit, cfg.split_seed, of=total)


def with_validation(data: LoadedData, fraction: float, seed: int) -> LoadedData:
    """The dataset with its validation split: a folder's own `val/` as it is, else `fraction` of the
    training split carved by `data.splits.carve` (stratified where the task has classes); none
    with a fraction of 0."""
    if data.val is not None or fraction == 0:
        return data
    stratified = task_class(data.task).stratified
    labels = data.train.labels.numpy()
    train_rows, val_rows = carve(labels, fraction, seed, stratified, where=data.name, names=data.classes)
    val = data.train.take(val_rows)
    if not isinstance(val.images, torch.Tensor):  # carved from images on disk: read (it is scored whole)
        val = TensorSet(val.images.in_memory(), val.labels)
    return dataclasses.replace(data, train=data.train.take(train_rows), val=val,
                               val_source=carve_rule(fraction, seed, stratified))  # fmt: skip


def overfit_split(data: LoadedData, batches: int, batch_size: int, seed: int) -> LoadedData:
    """`--overfit-batches N`: the training split cut to N batches' worth of samples (a seeded random
    choice, kept in their order), and the validation split made those same samples: a model that
    can learn at all drives both to the bottom."""
    n = min(len(data.train), batches * batch_size)
    keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    train = data.train.take(keep)
    val = TensorSet(train.images if isinstance(train.images, torch.Tensor) else train.images.in_memory(),
                    train.labels)  # fmt: skip
    taken = math.ceil(n / batch_size)  # fewer than asked where the training split is smaller
    asked = "" if taken == batches else f", all there are of the {batches} asked"
    return dataclasses.replace(data, train=train, val=val, val_source=f"the same {taken} training "
                               f"batch{'es' * (taken != 1)} (--overfit-batches{asked})")  # fmt: skip


def limit_train(
    data: LoadedData, n: int, seed: int, *, said: bool = True, of: int | None = None
) -> LoadedData:
    """The same dataset with a seeded random `n` of its training images (kept in their order).
    `said`: the source names the limit (`of`: out of how many the dataset had)."""
    if n > len(data.train):
        raise TochaError(f"data.train_limit {n}: {data.name} has only {len(data.train)} training samples")

    keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    train = data.train.take(keep)
    limited = f"{n} of {of} train images" if of is not None else f"--train-limit {n}"
    source = f"{data.source}, {limited}" if said else data.source
    return dataclasses.replace(data, train=train, source=source)
