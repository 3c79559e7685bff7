"""Fine-tuning: start from trained weights, give the model a new head, train the head first.

`--init-from` takes the model (family and options) and its weights from a run folder, a checkpoint
or a `.safetensors` export. With the same classes every weight is loaded; with other classes the
classifier (`models.head`) is new and everything before it is loaded. `--freeze backbone` trains the
classifier only (batch-norm statistics frozen too); `--freeze-epochs N` then trains everything, the
backbone at `--backbone-lr-mult` of the learning rate (fastai's `fine_tune`: the head first, then all
with discriminative rates). Each phase has its own optimizer and schedule, holding only what trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import ModelConfig, RunConfig, TrainConfig
from tocha.errors import NotTochaCheckpoint, TochaError
from tocha.files import file_sha256
from tocha.formats import FORMATS
from tocha.models import classifier_name, head_of
from tocha.models.pretrained import check_named_hash, state_dict_fit
from tocha.models.registry import with_defaults
from tocha.runs.checkpoint import load_state_dict_file
from tocha.runs.trained import kind_of, read_trained
from tocha.training.loop import Optimization
from tocha.training.optimizers import make_optimizer
from tocha.training.schedules import make_plateau, make_scheduler

ALL, FROZEN, UNFROZEN = "all", "frozen", "unfrozen"  # training phases
SMALL_BATCH = 16  # a fine-tuned backbone's batch norms keep their statistics under this batch size


@dataclass
class InitSource:
    """The trained weights a run starts from, and what they were trained for (a plain state dict
    says nothing of that: its model, classes and input shape are None)."""

    path: Path  # the file the weights are read from
    sha256: str
    model: ModelConfig | None
    classes: list[str] | None
    image_shape: tuple[int, int, int] | None
    weights: dict[str, torch.Tensor]


def read_init_source(init_from: str) -> InitSource:
    """The weights of a run folder, a checkpoint (its evaluated weights), a safetensors export, or a
    plain state dict file (`torch.save(model.state_dict(), path)`, loaded weights-only)."""
    if FORMATS[kind := kind_of(init_from)].graph:  # its weights are inside a graph
        raise TochaError(
            f"--init-from {init_from}: {FORMATS[kind].described} cannot be trained further; "
            "give the run folder, its checkpoint.pt, a .safetensors export or a "
            "state dict"
        )
    try:
        trained = read_trained(init_from)
    except NotTochaCheckpoint:
        path = Path(init_from)
        sha256 = file_sha256(path)
        check_named_hash(path, sha256, f"--init-from {init_from}")  # a torchvision file: as its name says
        return InitSource(path, sha256, None, None, None, load_state_dict_file(path))
    shape = tuple(trained.image_shape)
    return InitSource(
        trained.path,
        file_sha256(trained.path),
        trained.config.model,
        list(trained.classes),
        shape,
        trained.weights,
    )  # type: ignore[arg-type]


def headless(model: ModelConfig) -> ModelConfig:
    """The model without its log-softmax head's option (the head follows the new run's loss)."""
    options = {k: v for k, v in (model.args or {}).items() if k != "log_softmax"}
    return dataclasses.replace(model, args=options or None)


def fine_tuning_config(config: RunConfig, source: InitSource) -> RunConfig:
    """The config with the source's model (a plain state dict: the model the config names) and the
    weights' checksum filled in."""
    t = config.train
    if t.init_from_sha256 is not None and t.init_from_sha256 != source.sha256:
        raise TochaError(
            f"--init-from {t.init_from}: its checksum is {source.sha256}, not the recorded "
            f"{t.init_from_sha256}: the weights changed since it was recorded"
        )
    checked = dataclasses.replace(t, init_from_sha256=source.sha256)
    if source.model is None:
        return dataclasses.replace(config, train=checked)
    mine, theirs = headless(config.model), headless(source.model)
    # The same model, its defaults spelt out or not (the name first: "auto" has no defaults).
    same = mine.name == theirs.name and with_defaults(mine) == with_defaults(theirs)
    if mine != ModelConfig() and not same:
        raise TochaError(
            f"--init-from {t.init_from} brings its own model ({theirs.name}); "
            "leave out --model and the model options"
        )
    return dataclasses.replace(config, model=theirs, train=checked)


def load_initial_weights(
    model: nn.Module,
    source: InitSource,
    classes: list[str],
    image_shape: tuple,
    *,
    log: Any,
    partial: bool = False,
) -> None:
    """Load the source's weights into `model`: all of them for the same classes, all but the head
    otherwise (the new head keeps its fresh initialisation). A plain state dict must name every
    weight of the model, with its shape; only the head may differ in size (other classes)."""
    head, how = head_of(model)
    own = model.state_dict()
    if source.classes is None:
        return load_state_dict_weights(model, source, head, how, log=log, partial=partial)
    same_classes = source.classes == classes
    weights = {k: v for k, v in source.weights.items() if same_classes or not k.startswith(head + ".")}
    misfit = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if misfit or (source.image_shape is not None and source.image_shape[0] != image_shape[0]):
        raise TochaError(shape_advice(source, image_shape))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith(head + ".") for k in missing):
        raise TochaError(
            f"--init-from {source.path}: its weights do not fit this model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if same_classes:
        log(f"init from {source.path}: every weight loaded ({len(weights)} tensors, same classes)")
    else:
        log(
            f"init from {source.path}: {len(weights)} tensors loaded; new classifier {head} ({how}; "
            f"{len(source.classes)} -> {len(classes)} other classes, freshly initialised)"
        )


def load_what_fits(model: nn.Module, source: InitSource, missing: list[str], unexpected: list[str],
                   misfit: list[str], *, log: Any) -> None:  # fmt: skip
    """`--init-from-partial`: the tensors whose name and shape the model shares, loaded; the others
    named (the model's keeping their fresh initialisation)."""
    kept = {k: v for k, v in source.weights.items() if k not in unexpected and k not in misfit}
    if not kept:
        raise TochaError(f"--init-from {source.path}: no tensor of it fits {type(model).__name__} (no name "
                         "and shape in common)")  # fmt: skip
    model.load_state_dict(kept, strict=False)
    log(f"init from {source.path} (--init-from-partial): {len(kept)} tensors loaded")
    own, weights = model.state_dict(), source.weights
    for key in misfit:
        log(f"  skipped {key}: {tuple(weights[key].shape)} there, {tuple(own[key].shape)} here (freshly "
            "initialised)")  # fmt: skip
    for key in missing:
        log(f"  skipped {key}: not in the file (freshly initialised)")
    for key in unexpected:
        log(f"  skipped {key}: not in the model")


def load_state_dict_weights(model: nn.Module, source: InitSource, head: str, how: str, *, log: Any,
                            partial: bool = False) -> None:  # fmt: skip
    """A plain state dict into `model`: key for key and shape for shape, the head excepted when only
    its size differs (then it stays freshly initialised); else a few of what does not fit, named."""
    own, weights = model.state_dict(), source.weights
    in_head = lambda key: key.startswith(head + ".")  # noqa: E731
    missing, unexpected, misfit = state_dict_fit(own, weights)
    if partial:  # what fits is loaded; every key that does not is named
        return load_what_fits(model, source, missing, unexpected, misfit, log=log)
    if missing or unexpected or [k for k in misfit if not in_head(k)]:
        shown = [f"{k} missing" for k in missing[:3]] + [f"{k} not in the model" for k in unexpected[:3]]
        shown += [
            f"{k} {tuple(weights[k].shape)} where the model has {tuple(own[k].shape)}" for k in misfit[:3]
        ]
        raise TochaError(
            f"--init-from {source.path}: the state dict does not fit {type(model).__name__} "
            f"({'; '.join(shown)}); --init-from-partial loads what fits and names the rest"
        )
    kept = {k: v for k, v in weights.items() if k not in misfit}
    model.load_state_dict(kept, strict=False)
    if misfit:
        log(
            f"init from {source.path}: {len(kept)} tensors loaded; new head {head} ({how}: "
            f"{tuple(weights[misfit[0]].shape)} there, {tuple(own[misfit[0]].shape)} here, "
            "freshly initialised)"
        )
    else:
        log(f"init from {source.path}: every weight of the state dict loaded ({len(kept)} tensors)")


def shape_advice(source: InitSource, image_shape: tuple) -> str:
    (c0, h0, w0), (c1, h1, w1) = source.image_shape or image_shape, image_shape
    was, now = f"{c0}x{h0}x{w0}", f"{c1}x{h1}x{w1}"
    start = f"--init-from {source.path}: the model was trained on {was} images, these are {now}"
    if c0 != c1:
        return (
            f"{start}; the number of channels must be the same (a grayscale model takes 1-channel images: "
            "an image folder of grayscale files is read as 1 channel, of colour files as 3)"
        )
    return f"{start}; read an image folder at the model's size with --image-size {h0}x{w0}"


def phase_of(t: TrainConfig, epoch: int) -> str:
    """Which parameters train in `epoch` (from 1)."""
    if t.freeze != "backbone":
        return ALL
    return FROZEN if t.freeze_epochs is None or epoch <= t.freeze_epochs else UNFROZEN


def phase_epochs(t: TrainConfig, phase: str) -> int:
    """How many epochs `phase` lasts: the span its schedule is planned over."""
    if phase == FROZEN and t.freeze_epochs is not None:
        return min(t.freeze_epochs, t.epochs)
    if phase == UNFROZEN:
        return t.epochs - (t.freeze_epochs or 0)
    return t.epochs


def enter_phase(model: nn.Module, t: TrainConfig, phase: str) -> tuple[list[dict[str, Any]], list[nn.Module]]:
    """Set what trains in `phase`; returns the optimizer's parameter groups (only what trains) and
    the modules to keep in eval mode: the frozen backbone's batch norms, and after unfreezing too
    where batches are small (under `SMALL_BATCH`: their statistics would be noisier than the ones
    the backbone brings)."""
    head = classifier_name(model) + "."
    head_params = [p for n, p in model.named_parameters() if n.startswith(head)]
    backbone = [p for n, p in model.named_parameters() if not n.startswith(head)]
    for p in backbone:
        p.requires_grad_(phase != FROZEN)
    if phase == ALL:
        return [{"params": list(model.parameters())}], []
    norms = [
        m
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not n.startswith(head)
    ]
    if phase == FROZEN:
        return [{"params": head_params}], norms
    kept = norms if t.batch_size < SMALL_BATCH else []
    return [{"params": head_params}, {"params": backbone, "lr": t.lr * t.backbone_lr_mult}], kept


def phase_optimization(
    model: nn.Module,
    t: TrainConfig,
    phase: str,
    steps_per_epoch: int,
    *,
    device: torch.device,
    averaged: Any,
    amp_dtype: torch.dtype | None,
    higher_is_better: bool = True,
    factory: Any = None,
) -> tuple[Optimization, list[nn.Module]]:
    """A fresh optimizer and schedule for `phase` (planned over the phase's epochs), and the
    modules to keep in eval mode during it. `higher_is_better`: the monitored metric's direction,
    for a plateau schedule; `factory`: an optimizer factory given in Python."""
    groups, keep_eval = enter_phase(model, t, phase)
    optimizer = make_optimizer(groups, t, device, factory)
    total_steps = phase_epochs(t, phase) * steps_per_epoch
    scheduler = make_scheduler(optimizer, t.schedule, total_steps, t.warmup_fraction)
    plateau = None
    if t.schedule == "plateau":
        plateau = make_plateau(
            optimizer, higher_is_better, t.plateau_factor, t.plateau_patience, min_delta=t.min_delta
        )
    opt = Optimization(optimizer, scheduler, averaged, amp_dtype, plateau, t.accumulate, t.clip_grad_norm)
    return opt, keep_eval
