"""`Learner`: the model being trained with what trains it: its optimizer and schedule for the
current phase (fine-tuning trains the head first), the weight average, and the evaluator that
scores it (the same inference model `predict` uses)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tocha.config import TrainConfig
from tocha.devices import resolve_precision
from tocha.inference.model import InferenceModel
from tocha.memory import device_available_bytes
from tocha.models import head_of
from tocha.models.pretrained import PretrainedWeights, load_pretrained
from tocha.tasks import Task
from tocha.training.device_data import DeviceData
from tocha.training.finetune import ALL, InitSource, load_initial_weights, phase_of, phase_optimization
from tocha.training.loop import Optimization
from tocha.training.resolved import ResolvedRun
from tocha.training.runtime import Runtime


@dataclass
class Learner:
    model: nn.Module  # the weights being trained
    forward_model: nn.Module  # the same model as the loop calls it: DDP-wrapped, compiled when asked
    opt: Optimization  # optimizer, schedule, weight average, autocast dtype
    evaluator: InferenceModel  # normalisation + the evaluated weights (+ flip TTA), as predict uses
    train: TrainConfig
    steps_per_epoch: int  # what a phase's schedule is planned over
    phase: str = ALL  # what trains this epoch (training.finetune)
    keep_eval: list[nn.Module] = field(default_factory=list)  # frozen batch norms
    higher: bool = True  # whether the monitored validation metric improves as it rises
    factory: Any = None  # an optimizer factory given in Python (`training.pieces`), for every phase

    @classmethod
    def build(
        cls,
        run: ResolvedRun,
        data: DeviceData,
        runtime: Runtime,
        source: InitSource | None,
        *,
        log: Callable[[str], None],
        pretrained: PretrainedWeights | None = None,
    ) -> Learner:
        """The model initialised from the run's seed (or the weights it fine-tunes: `source`, or
        `pretrained`'s, the head new), on the device in the layout it trains in, with the optimizer
        of its first phase."""
        cfg, task, architecture = run.config, run.task, run.architecture
        t, device, loaded = cfg.train, runtime.device, data.loaded
        architecture.check_fits()  # before a byte is taken
        architecture.check_activations_fit(device_available_bytes(device), t.batch_size // runtime.world_size,
                                           t.eval_batch_size)  # fmt: skip
        torch.manual_seed(t.seed)  # model initialisation (a module given in Python keeps its own)
        model = architecture.build()
        if pretrained is not None:  # into the CPU model, then moved: one copy on the device
            log(f"--pretrained {cfg.model.pretrained}: {load_pretrained(model, pretrained, '--pretrained')}")
        model = model.to(device)
        if t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if source is not None:
            load_initial_weights(model, source, loaded.classes, loaded.image_shape, log=log,
                                 partial=t.init_from_partial)  # fmt: skip
        if t.freeze == "backbone" and architecture.own:
            name, how = head_of(model)
            log(f"--freeze backbone: the head is {name} ({how} of {architecture.label}); the rest is frozen")
        model = runtime.sync_batchnorm(model, t.sync_batchnorm)
        averaged = ema_of(model, t.ema_decay)  # after the initial weights: it starts from a copy
        amp_dtype = resolve_precision(t.precision, device)[1]
        phase = phase_of(t, 1)
        higher = monitored_higher(t, task)
        opt, keep_eval = phase_optimization(
            model,
            t,
            phase,
            data.steps_per_epoch,
            device=device,
            averaged=averaged,
            amp_dtype=amp_dtype,
            higher_is_better=higher,
            factory=run.optimizer_factory,
        )
        evaluated = averaged.module if averaged is not None else model
        evaluator = InferenceModel(
            evaluated, data.normalize, task=task, tta_flip=t.tta_flip, amp_dtype=amp_dtype,
            classes=loaded.classes, image_shape=loaded.image_shape, config=cfg, table=loaded.table,
        )  # fmt: skip
        forward = runtime.wrap(model)
        return cls(model, torch.compile(forward) if t.compile else forward, opt, evaluator, t,
                   data.steps_per_epoch, phase, keep_eval, higher, run.optimizer_factory)  # fmt: skip

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def enter_epoch(self, epoch: int) -> None:
        """Switch to the training phase of `epoch` (from 1): a fresh optimizer and schedule for a new
        phase, holding only what trains in it; nothing changes within a phase."""
        phase = phase_of(self.train, epoch)
        if phase != self.phase:
            self.phase = phase
            opt = self.opt
            self.opt, self.keep_eval = phase_optimization(
                self.model,
                self.train,
                phase,
                self.steps_per_epoch,
                device=self.device,
                averaged=opt.averaged,
                amp_dtype=opt.amp_dtype,
                higher_is_better=self.higher,
                factory=self.factory,
            )


def monitored_higher(t: TrainConfig, task: Task) -> bool:
    """Whether the metric choices are made on (`val_accuracy`, `val_loss`...) improves as it rises."""
    return task.higher_is_better(t.monitor.removeprefix("val_")) if t.monitor != "none" else True


def ema_of(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights (and batch-norm statistics), or None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
