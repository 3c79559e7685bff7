"""Learning-rate schedules by name: stepped once per batch, or (`plateau`) once per epoch on the
monitored validation metric."""

from __future__ import annotations

import math

import torch

from tocha.errors import TochaError

SCHEDULES = ("constant", "onecycle", "linear", "cosine", "plateau")


def unknown_schedule(name: str) -> TochaError:
    return TochaError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_fraction: float = 0.25
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """`constant` (None), `onecycle` (warm up to lr, then anneal to ~0), `linear` or `cosine`
    decay from lr to 0 over `total_steps` batches. `plateau` is not stepped per batch (None here:
    `make_plateau`)."""
    if name in ("constant", "plateau"):
        return None
    if name == "onecycle":
        lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps, pct_start=warmup_fraction, cycle_momentum=False
        )
    if name == "linear":
        factor = lambda step: max(0.0, 1 - step / total_steps)  # noqa: E731
    elif name == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))  # noqa: E731
    else:
        raise unknown_schedule(name)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_plateau(
    optimizer: torch.optim.Optimizer,
    higher_is_better: bool,
    factor: float,
    patience: int,
    *,
    min_delta: float,
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """PyTorch's ReduceLROnPlateau on the monitored metric: the rate times `factor` after `patience`
    epochs without an improvement of more than `min_delta`."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max" if higher_is_better else "min",
        factor=factor,
        patience=patience,
        threshold=min_delta,
        threshold_mode="abs",
    )
