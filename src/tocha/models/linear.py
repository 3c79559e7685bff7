"""`linear`: flatten + one Linear layer, i.e. multinomial logistic regression."""

from __future__ import annotations

import math

from torch import nn

from tocha.models.layers import head_layers
from tocha.models.registry import register_model


@register_model
def linear(in_shape: tuple[int, int, int], num_classes: int, log_softmax: bool = False) -> nn.Module:
    """Flatten + one Linear layer (multinomial logistic regression)."""
    return nn.Sequential(nn.Flatten(), *head_layers(math.prod(in_shape), num_classes, log_softmax))
