"""A module's shapes without its memory: the copy every check before training runs on."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` whose parameters and buffers are on meta: its shapes, without a second copy
    of its memory."""
    return copy_with(module, lambda t: torch.empty_like(t, device="meta"))


def zeroed_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` (on meta or not) whose parameters and buffers are zeros on the CPU. Made
    with `torch.zeros` of each shape: `to_empty` from meta goes through torch's Python reference
    of `empty_like`, which loads sympy (0.4 s) the first time."""
    return copy_with(module, lambda t: torch.zeros(t.shape, dtype=t.dtype))


def copy_with(module: nn.Module, new: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """A copy of `module` whose parameters and buffers are `new(each)`: deepcopy is handed them in
    place of the originals, so the originals' memory is never copied."""
    memo: dict[int, Any] = {}
    for p in module.parameters():
        memo[id(p)] = nn.Parameter(new(p), p.requires_grad)
    for b in module.buffers():
        memo[id(b)] = new(b)
    return copy.deepcopy(module, memo)
