"""The training loop: forward, loss, zero_grad, backward, step, for one epoch's batches.

Everything around it has its own home: the batches come from `data.batches` (already on the
device, normalised and augmented), the loss and the running sums from the task (`tocha.tasks`),
and the state a stopped epoch needs to go on from `EpochTally`.
"""

from __future__ import annotations

import contextlib
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
    accumulate: int = 1  # `--accumulate N`: each batch's gradient summed over N parts (see `backward`)
    clip_grad_norm: float | None = None  # `--clip-grad-norm X`: the gradient's norm cut to X before a step


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    task: Task,
    opt: Optimization,
    *,
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
    try:
        train_steps(model, batches, task, opt, tally=tally, stop=stop, on_step=on_step)
    finally:  # the sums complete however the steps end: the batches done, a stop, a NaN loss, an error
        tally.settle()


def train_steps(
    model: nn.Module,
    batches: Iterable[Batch],
    task: Task,
    opt: Optimization,
    *,
    tally: EpochTally,
    stop: Callable[[], bool],
    on_step: Callable[[int], None] | None,
) -> None:
    """The steps of `train_one_epoch`, each as a hand-written loop takes it, then counted in `tally`."""
    for step, x, y, weight in batches:  # x: (B, C, H, W) float on the device, y: (B,)
        opt.optimizer.zero_grad(set_to_none=True)
        if opt.accumulate == 1:
            loss, out = forward_loss(model, x, y, task, opt.amp_dtype)
            # With several processes a share's weight makes their averaged gradients the whole batch's.
            (loss * weight if weight != 1 else loss).backward()
        else:
            loss, out = accumulated_backward(model, x, y, task, opt=opt, weight=weight)
        if opt.clip_grad_norm is not None:  # the norm before clipping, kept on the device
            tally.add_norm(nn.utils.clip_grad_norm_(model.parameters(), opt.clip_grad_norm))
        opt.optimizer.step()
        if opt.scheduler is not None:
            opt.scheduler.step()  # schedules are per batch
        if opt.averaged is not None:
            opt.averaged.update_parameters(model)
        counted = weight > 0  # a stand-in sample (a rank with no share of a short batch) counts for nothing
        tally.add(
            step, loss.detach(), out.detach(), y, counted=counted
        )  # sums stay on the device: no wait here
        if on_step is not None:
            on_step(len(y) if counted else 0)
        if tally.diverged() or stop():  # neither waits for the device (see EpochTally.diverged)
            return


def forward_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task, amp_dtype: torch.dtype | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's mean loss (this rank's share of it) and the model's outputs (B, classes); in
    fp32 without entering an autocast context, in bf16 within one (the loss in fp32 all the same)."""
    if amp_dtype is None:
        out = model(x)
        return task.loss(out if out.dtype == torch.float32 else out.float(), y), out
    with autocast(x.device, amp_dtype):
        out = model(x)
        return task.loss(out.float(), y), out


def accumulated_backward(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task, *, opt: Optimization, weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's gradient in `opt.accumulate` parts, each through the model on its own (a batch
    N times what fits in memory): each part's mean loss weighted by its share of the batch (and the
    batch's `weight`, its rank's share of the global batch), so the summed gradient is the whole
    batch's mean-loss gradient. With several processes the gradients are averaged across them once,
    on the last part. Returns the batch's loss (unweighted: its mean) and outputs."""
    parts = list(zip(x.tensor_split(opt.accumulate), y.tensor_split(opt.accumulate), strict=True))
    parts = [(xs, ys) for xs, ys in parts if len(ys)]  # a short last batch: fewer parts
    outputs, loss = [], torch.zeros((), device=x.device)
    for i, (xs, ys) in enumerate(parts):
        last = i == len(parts) - 1
        syncs = last or not isinstance(model, nn.parallel.DistributedDataParallel)
        with contextlib.nullcontext() if syncs else model.no_sync(), autocast(x.device, opt.amp_dtype):
            out = model(xs)
            part_loss = task.loss(out.float(), ys) * (len(ys) / len(y))
        (part_loss * weight if weight != 1 else part_loss).backward()
        outputs.append(out.detach())
        loss = loss + part_loss.detach()
    return loss, torch.cat(outputs)
