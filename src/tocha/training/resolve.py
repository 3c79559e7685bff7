"""A run's config made concrete once: every automatic choice decided, frozen.

Two steps, because some choices need the data: `training.plan` runs before any data is read (every
value's range, every name, `--init-from`'s model, `--model auto`), so a typo costs nothing;
`resolve` runs once the data is loaded and returns the config a run records (the dataset `auto`
chose, the size an image folder was read at, the normalisation, the model's defaults and head, the
loss, the precision, the memory layout, the threads), frozen: nothing changes it afterwards.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import RunConfig, TrainConfig
from tocha.data.given import as_given_normalization, load_given
from tocha.data.load import AUTO, load_configured, resolve_name
from tocha.data.normalize import channel_stats
from tocha.data.registry import DATASETS
from tocha.data.table_set import feature_stats
from tocha.data.tensorset import LoadedData
from tocha.data.text import columns_of
from tocha.data.train_split import for_training, overfit_split
from tocha.devices import resolve_channels_last, resolve_precision
from tocha.errors import TochaError
from tocha.models.architecture import Architecture
from tocha.models.registry import with_defaults
from tocha.models.user_names import is_own
from tocha.tasks import Task, make_task, task_class
from tocha.training.augment import check_translate
from tocha.training.console import auto_data_line
from tocha.training.optimizers import weight_decay_of
from tocha.training.pieces import Pieces, check_loss_value
from tocha.training.plan import Planned, plan, with_head
from tocha.training.recipe import imagenet_normalization
from tocha.training.resolved import ResolvedRun


def load_data(config: RunConfig, log: Callable[[str], None], given: Any = None) -> tuple[str, LoadedData]:
    """The dataset the config names, as loaded (on the CPU), and its name with `auto` resolved
    (and said): a registered name, or the image folder's path as given. `given`: data given in
    Python (`data.given`), read once, its validation carved as any dataset's."""
    if given is not None:
        name = config.data.name  # python:..., recorded as given
        return name, with_overfit(
            config, for_training(load_given(given, config.data, name, log, config.train.seed), config.data)
        )
    name = resolve_name(config.data.name, config.data.data_dir)
    if config.data.name == AUTO:
        log(auto_data_line(name))
    flips = [
        flag
        for flag, on in (("--augment-flip", config.data.augment_flip), ("--tta-flip", config.train.tta_flip))
        if on
    ]
    spec = DATASETS.get(name)
    if flips and spec is not None and spec.mirror_note:
        log(
            f"note: {' and '.join(flips)} {'mirrors' if len(flips) == 1 else 'mirror'} {name}'s images "
            f"left to right, and {spec.mirror_note}: flips suit photos and clothing, not these"
        )
    return name, with_overfit(config, load_configured(config.data, name, log=log))


def with_overfit(config: RunConfig, data: LoadedData) -> LoadedData:
    """`--overfit-batches N`: the same N training batches every epoch, validated on (`overfit_split`)."""
    t = config.train
    return (
        overfit_split(data, t.overfit_batches, t.batch_size, config.data.split_seed)
        if t.overfit_batches
        else data
    )


def normalization(config: RunConfig, data: LoadedData) -> tuple[list[float], list[float]]:
    """The per-channel mean and std: as given, or the training set's own."""
    mean, std = config.data.mean, config.data.std
    if (mean is None) != (std is None):
        raise TochaError("give both data.mean and data.std, or neither")
    if mean is None and data.details.get("as_given"):  # inputs passed as given: no normalisation
        mean, std = as_given_normalization(data.image_shape[0])
    elif mean is None and config.model.pretrained is not None:  # the numbers the weights were trained on
        mean, std = imagenet_normalization(data.image_shape[0])
    elif mean is None and data.details.get("series"):  # the training stretch's own, per column
        mean, std = data.details["series"]["mean"], data.details["series"]["std"]  # type: ignore[index]
    elif mean is None and data.details.get("input_stats"):  # worked out with the data (text beside columns)
        mean, std = data.details["input_stats"]["mean"], data.details["input_stats"]["std"]  # type: ignore[index]
    elif mean is None:
        mean, std = feature_stats(data) if data.table is not None else channel_stats(data.train.images)
    channels = data.image_shape[0]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise TochaError(f"data.mean and data.std need {channels} value(s) each, std > 0")
    return list(mean), list(std)


def resolve(
    planned: Planned,
    name: str,
    data: LoadedData,
    device: torch.device,
    *,
    given: Any = None,
    source_copy: Path | None = None,
    pieces: Pieces | None = None,
) -> ResolvedRun:
    """The planned run with every automatic choice made: the dataset actually used (`name`), the
    size an image folder was read at, the normalisation, the model's defaults and head, the task
    and its loss, the precision, the memory layout, the threads. The model is run once on meta on
    the data's shape: an output that does not fit the task is refused here. What the plan built
    (its checked network, a user's import) is used, not made again. `pieces`: a loss given in
    Python becomes the task's (tried once on the task's targets), an optimizer factory the run's."""
    d, m, t = planned.config.data, planned.config.model, planned.config.train
    check_accumulate(t.batch_size, t.accumulate, len(data.train))
    mean, std = normalization(planned.config, data)
    check_translate(d.augment_translate, data.image_shape)
    image_size = list(data.details["image_size"]) if data.details.get("image_size") else d.image_size
    own = is_own(m.name) or given is not None
    if data.integer and not own and not data.vocab_size:
        raise TochaError(
            f"{name}: integer inputs {data.item_shape} int64 (token ids) are for your own model, one "
            f"that takes them (an nn.Embedding first), not {m.name}: give --model FILE.py:NAME, or "
            "floats (x.float()) for tocha's models"
        )
    model = m if own else with_defaults(with_head(planned.config))  # the head follows the loss unless set
    kind = task_class(data.task)
    signal = data.item_shape if len(data.item_shape) == 2 else None
    inputs = {"signal": signal, "integer": data.integer, "vocab": data.vocab_size,  # (C, L), token ids, text
              "columns": columns_of(data.text), "per_token": kind.per_position}  # fmt: skip
    architecture = Architecture(
        model, data.image_shape, 0, rows=data.rows, given=given, source_copy=source_copy, **inputs
    )
    # (its outputs once the task is known: a user's model's last layer may decide the loss)
    if planned.architecture is not None and planned.architecture.same_network(
        dataclasses.replace(architecture, outputs=planned.architecture.outputs)
    ):
        architecture = planned.architecture.with_config(model)  # built and checked already: not again
    elif planned.maker is not None:
        architecture.made_by(planned.maker)  # the import that recorded it: the file is not read again
    loss = kind.resolve_loss(own_loss(t.loss, architecture.on_meta()) if own else t.loss)
    weights = kind.class_weights_for(loss, class_counts(data), t.class_weights) if t.class_weights else None
    task = make_task(data.task, loss, t.label_smoothing, data.table, class_weights=weights)
    architecture = architecture.with_outputs(task.output_size(data.classes))
    if pieces is not None and pieces.loss is not None:
        with_given_loss(task, pieces.loss, data, device)
    if own and len(data.item_shape) == 3:  # images as they are, or flattened (the notes' MLPs)
        model = dataclasses.replace(model, flatten=architecture.input_layout())
        architecture = architecture.with_config(model)
    on_meta = architecture.check()
    keep, monitor = selection(t, kind, data.val is not None)
    config = dataclasses.replace(
        planned.config,
        data=dataclasses.replace(d, name=name, image_size=image_size, mean=mean, std=std, task=data.task),
        model=model,
        train=dataclasses.replace(
            t,
            precision=resolve_precision(t.precision, device)[0],
            loss=loss,
            threads=torch.get_num_threads(),
            channels_last=resolve_channels_last(t.channels_last, device, on_meta),  # by its layers
            keep=keep,
            monitor=monitor,
            class_weights=",".join(repr(w) for w in weights) if weights else None,  # recorded as numbers
            weight_decay=weight_decay_of(t),  # the optimizer's default made concrete
        ),
    )
    factory = pieces.optimizer if pieces is not None else None
    return ResolvedRun(config, task, architecture.with_config(config.model), factory)


def with_given_loss(task: Task, loss: Any, data: LoadedData, device: torch.device) -> None:
    """The task computing its loss with one given in Python, on the run's device (a module's buffers,
    such as class weights), after one try on zeros shaped as the model's outputs and two of the
    task's training targets."""
    task.with_loss(loss.to(device) if isinstance(loss, nn.Module) else loss)
    targets = task.prepare(data.train.labels[:2]).to(device)
    outputs = torch.zeros(len(targets), task.output_size(data.classes), device=device, requires_grad=True)
    check_loss_value(task.loss, outputs, targets)


def class_counts(data: LoadedData) -> list[int]:
    """How many training samples each class has (the split training steps take)."""
    labels = data.train.labels
    return torch.bincount(labels.long(), minlength=len(data.classes)).tolist()


IMBALANCE = 3.0  # a most common class this many times the least common one is said


def balance_lines(data: LoadedData, t: TrainConfig, stratified: bool) -> list[str]:
    """What the run says of its classes at load: each class's count with `--class-weights`, and a
    warning where the most common class has over `IMBALANCE` times the least common's samples."""
    if not stratified or data.train.labels.ndim != 1:  # classes, one per sample
        return []
    counts = class_counts(data)
    named = sorted(zip(counts, data.classes, strict=True))
    lines = []
    if t.class_weights:
        each = ", ".join(f"{c} {n:,}" for c, n in zip(data.classes, counts, strict=True))
        lines.append(f"training samples per class: {each}")
    (least, few), (most, many) = named[0][::-1], named[-1][::-1]
    if many > IMBALANCE * max(few, 1):
        lines.append(
            f"warning: the classes are imbalanced: {most} has {many:,} training samples, {least} "
            f"{few:,} ({many / max(few, 1):.1f}x); accuracy favours the common ones: consider "
            "--class-weights balanced, and read the confusion matrix"
        )
    return lines


def selection(t: TrainConfig, task: type[Task], has_val: bool) -> tuple[str, str]:
    """The weights kept (`best` with a validation split, else `last`) and the validation metric
    every choice is made on (`val_<primary>` unless named; `none` without a validation split). What
    needs a validation split and has none is refused here, before anything is written."""
    if not has_val:
        asked = {
            "--keep best": t.keep == "best",
            "--early-stop": t.early_stop is not None,
            "--schedule plateau": t.schedule == "plateau",
            f"--monitor {t.monitor}": t.monitor not in ("auto", "none"),  # none: what a resolved run records
        }
        needs = [flag for flag, given in asked.items() if given]
        if needs:
            raise TochaError(
                f"{', '.join(needs)}: choices are made on a validation split, and this run has "
                "none (--val-fraction 0); give --val-fraction, or leave them out"
            )
        return "last", "none"
    monitor = f"val_{task.primary}" if t.monitor == "auto" else t.monitor
    known = [f"val_{m}" for m in task.metrics + task.held_out]
    if monitor not in known:
        raise TochaError(
            f"--monitor {monitor}: a {task.name} run's validation metrics are {', '.join(known)}"
        )
    return ("best" if t.keep == "auto" else t.keep), monitor


def check_accumulate(batch_size: int, accumulate: int, samples: int) -> None:
    """A step's batch (`--batch-size` x `--accumulate`) is at most what the training split fills:
    parts beyond it would be empty (10 million of them took 12.7 GB and 44 s to make)."""
    most = max(1, math.ceil(samples / batch_size))
    if accumulate > most:
        raise TochaError(
            f"--accumulate {accumulate}: a step's batch would be {batch_size * accumulate:,} "
            f"samples (--batch-size {batch_size} x {accumulate}), more than the {samples:,} "
            f"training samples; at most --accumulate {most} (every sample in one "
            "step)"
        )


def own_loss(loss: str, model: nn.Module) -> str:
    """`auto` for a user's model that ends in nn.LogSoftmax (the notes' MNIST model): NLLLoss, which
    takes log-probabilities; else the task's own choice."""
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    return "nll" if loss == "auto" and leaves and isinstance(leaves[-1], nn.LogSoftmax) else loss


def resolve_config(config: RunConfig, name: str, data: LoadedData, device: torch.device) -> RunConfig:
    """`plan` and `resolve` in one call, for a caller that has read the data already."""
    return resolve(plan(config), name, data, device).config
