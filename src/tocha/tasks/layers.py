"""The modules a task adds to the inference model after the network (torch, imported when built)."""

from __future__ import annotations

import torch
from torch import nn


class Affine(nn.Module):
    """x * scale + shift with constant floats: a regression's outputs back in the target's units,
    folded into every export's graph as two constants."""

    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = float(scale), float(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, shift={self.shift:g}"
