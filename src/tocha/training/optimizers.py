"""Optimizers by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from tocha.config import TrainConfig
from tocha.errors import TochaError
from tocha.training.pieces import Pieces

OPTIMIZERS = ("sgd", "adam", "adamw")
TORCH_WEIGHT_DECAY = {"sgd": 0.0, "adam": 0.0, "adamw": 0.01}  # torch.optim's defaults


def weight_decay_of(cfg: TrainConfig) -> float:
    """The weight decay given, or the optimizer's own default in torch.optim (AdamW's is 0.01)."""
    return TORCH_WEIGHT_DECAY.get(cfg.optimizer, 0.0) if cfg.weight_decay is None else cfg.weight_decay


def make_optimizer(
    params: Iterable[Any], cfg: TrainConfig, device: torch.device | None = None, factory: Any = None
) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov, weight decay), Adam or AdamW from the training config; or what an
    optimizer factory given in Python builds (`factory`, `training.pieces`).

    On CPU and CUDA the fused implementations update each parameter in one kernel instead of
    several small ones, which is most of the optimizer's cost for small models.
    """
    if factory is not None:
        return factory_optimizer(list(params), cfg, factory)
    fused = True if device is not None and device.type in ("cpu", "cuda") else None
    if cfg.optimizer == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:
            raise TochaError("nesterov needs a positive momentum")
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=weight_decay_of(cfg),
            fused=fused,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=weight_decay_of(cfg), fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=weight_decay_of(cfg), fused=fused)
    raise unknown_optimizer(cfg.optimizer)


def factory_optimizer(groups: list[Any], cfg: TrainConfig, factory: Any) -> torch.optim.Optimizer:
    """The factory's optimizer over `groups`: a group with a rate of its own (a fine-tuned backbone's
    `cfg.lr * backbone_lr_mult`) keeps its share of the factory's rate, which the config records."""
    shares = [g.get("lr", cfg.lr) / cfg.lr if isinstance(g, dict) else 1.0 for g in groups]
    plain = [{k: v for k, v in g.items() if k != "lr"} if isinstance(g, dict) else g for g in groups]
    optimizer = Pieces(optimizer=factory).build_optimizer(plain)
    for group, share in zip(optimizer.param_groups, shares, strict=True):
        group["lr"] *= share
    return optimizer


def unknown_optimizer(name: str) -> TochaError:
    return TochaError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
