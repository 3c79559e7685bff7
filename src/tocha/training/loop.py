"""The training loop: forward, loss, zero_grad, backward, step, for one epoch's batches.

Everything around it has its own home: the batches come from `data.batches` (already on the
device, normalised and augmented), the loss and the running sums from the task (`tocha.tasks`),
and the state a stopped epoch needs to go on from `EpochTally`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tocha.data.batches import Batch
from tocha.devices import autocast
from tocha.tasks import Task
from tocha.training.tally import EpochTally


@dataclass
class Optimization:
    """What takes a step: the optimizer, and what follows it (schedule, weight average)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    averaged: torch.optim.swa_utils.AveragedModel | None = None  # moving average of the weights
    amp_dtype: torch.dtype | None = None  # autocast dtype (bf16), None for fp32
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None  # stepped per epoch, on validation


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    task: Task,
    opt: Optimization,
    tally: EpochTally,
    stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[int], None] | None = None,
    keep_eval: Sequence[nn.Module] = (),
) -> None:
    """Train on `batches` until they run out, `stop()` answers True (asked before each step), or
    a loss turns NaN/inf; `tally` holds the sums and says which it was and where. `keep_eval`:
    modules that stay in eval mode (a frozen backbone's batch norms keep their statistics)."""
    model.train()
    for module in keep_eval:
        module.eval()
    # stop() is asked before each batch is drawn, so a stopped run has drawn nothing it did not use
    # (the augmentation generator included) and a resumed one draws it again exactly.
    if stop():  # a plain flag, set by a signal handler: costs nothing per step
        return
    for step, x, y in batches:  # x: (B, C, H, W) float on the device, y: (B,)
        with autocast(x.device, opt.amp_dtype):
            out = model(x)  # (B, classes)
            loss = task.loss(out.float(), y)  # mean over the batch
        opt.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        opt.optimizer.step()
        if opt.scheduler is not None:
            opt.scheduler.step()  # schedules are per batch
        if opt.averaged is not None:
            opt.averaged.update_parameters(model)
        tally.add(step, loss.detach(), out.detach(), y)  # sums stay on the device: no wait here
        if on_step is not None:
            on_step(len(y))
        if tally.diverged() or stop():  # neither waits for the device (see EpochTally.diverged)
            return
