"""Loss functions by name, each taking the model's outputs and integer labels."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from tocha.errors import TochaError

LOSSES = ("cross_entropy", "nll", "mse")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(name: str, label_smoothing: float = 0.0) -> LossFn:
    """`cross_entropy` on logits; `nll` on log-probabilities (pair it with the log_softmax head);
    `mse` between softmax probabilities and one-hot labels."""
    if name not in LOSSES:
        raise TochaError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if label_smoothing and name != "cross_entropy":
        raise TochaError(f"label_smoothing works with the cross_entropy loss, not {name}")
    if name == "cross_entropy":
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)
    if name == "nll":
        return F.nll_loss
    return lambda out, y: F.mse_loss(out.softmax(dim=1), F.one_hot(y, out.shape[1]).to(out.dtype))
