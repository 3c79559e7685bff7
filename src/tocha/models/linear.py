"""`linear`: flatten + one Linear layer, i.e. multinomial logistic regression."""

from __future__ import annotations

import math
from typing import Any

from tocha.models.registry import LOG_SOFTMAX, register_model


@register_model(log_softmax=LOG_SOFTMAX)
def linear(in_shape: tuple[int, int, int], num_classes: int, log_softmax: bool = False) -> Any:
    """Flatten + one Linear layer (multinomial logistic regression)."""
    from torch import nn

    from tocha.models.layers import head_layers

    return nn.Sequential(nn.Flatten(), *head_layers(math.prod(in_shape), num_classes, log_softmax))
