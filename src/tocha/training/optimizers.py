"""Optimizers by name."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from tocha.config import TrainConfig
from tocha.errors import TochaError

OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: TrainConfig, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov, weight decay), Adam or AdamW from the training config.

    On CPU and CUDA the fused implementations update each parameter in one kernel instead of
    several small ones, which is most of the optimizer's cost for small models.
    """
    fused = True if device is not None and device.type in ("cpu", "cuda") else None
    if cfg.optimizer == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:
            raise TochaError("nesterov needs a positive momentum")
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
            fused=fused,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    raise unknown_optimizer(cfg.optimizer)


def unknown_optimizer(name: str) -> TochaError:
    return TochaError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
