"""A module's shapes without its memory: the copy every check before training runs on."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` whose parameters and buffers are on meta: its shapes, without a second copy
    of its memory (deepcopy is handed the meta tensors in place of the real ones)."""
    memo: dict[int, Any] = {}
    for p in module.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
    for b in module.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(module, memo)
