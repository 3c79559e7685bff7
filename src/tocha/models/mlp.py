"""`mlp`: flatten, then Linear + activation for each hidden size, then the classifier head."""

from __future__ import annotations

import math

from torch import nn

from tocha.models.layers import activation as make_activation
from tocha.models.layers import head_layers
from tocha.models.registry import register_model


@register_model
def mlp(
    in_shape: tuple[int, int, int],
    num_classes: int,
    hidden_sizes: list[int] | tuple[int, ...] = (128, 64),
    activation: str = "relu",
    log_softmax: bool = False,
) -> nn.Module:
    """Multi-layer perceptron: Flatten, [Linear + activation] per hidden size, Linear."""
    make_activation(activation)  # validate the name even when there are no hidden layers
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(in_shape)  # 1*28*28 = 784 for MNIST
    for size in hidden_sizes:
        layers += [nn.Linear(width, int(size)), make_activation(activation)]
        width = int(size)
    layers += head_layers(width, num_classes, log_softmax)
    return nn.Sequential(*layers)
