"""`mlp`: flatten, then Linear + activation for each hidden size, then the classifier head."""

from __future__ import annotations

import math
from typing import Any

from tocha.config_fields import positive_sizes
from tocha.models.registry import ACTIVATION, LOG_SOFTMAX, ModelOption, register_model


@register_model(
    hidden_sizes=ModelOption("hidden layer widths", check=positive_sizes(), metavar="N,N"),
    activation=ACTIVATION,
    log_softmax=LOG_SOFTMAX,
)
def mlp(
    in_shape: tuple[int, int, int],
    num_classes: int,
    hidden_sizes: list[int] | tuple[int, ...] = (128, 64),
    activation: str = "relu",
    *,
    log_softmax: bool = False,
) -> Any:
    """Multi-layer perceptron: Flatten, [Linear + activation] per hidden size, Linear."""
    from torch import nn

    from tocha.models.layers import activation as make_activation
    from tocha.models.layers import head_layers

    make_activation(activation)  # validate the name even when there are no hidden layers
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(in_shape)  # 1*28*28 = 784 for MNIST
    for size in hidden_sizes:
        layers += [nn.Linear(width, int(size)), make_activation(activation)]
        width = int(size)
    layers += head_layers(width, num_classes, log_softmax)
    return nn.Sequential(*layers)
