"""`resnet`: a small batch-norm residual network for fast CIFAR-10 training.

After the ResNet-9 of the DAWNBench / CIFAR-10 speed-run literature (D. Page, "How to train your
ResNet"; K. Jordan's airbench): a conv stem, then three stages of [conv -> maxpool -> BN -> act]
of which the first and last add a residual pair of convs, then global max pooling and a Linear
layer whose output is scaled down (a fixed temperature that speeds up early training).
"""

from __future__ import annotations

from typing import Any

from tocha.config_fields import positive_sizes
from tocha.models.registry import ACTIVATION, LOG_SOFTMAX, ModelOption, register_model


@register_model(
    widths=ModelOption("stem and stage widths", check=positive_sizes(4), metavar="N,N,N,N"),
    activation=ACTIVATION,
    log_softmax=LOG_SOFTMAX,
)
def resnet(
    in_shape: tuple[int, int, int],
    num_classes: int,
    widths: list[int] | tuple[int, ...] = (64, 128, 256, 512),
    activation: str = "gelu",
    *,
    log_softmax: bool = False,
) -> Any:
    """ResNet-9-style CNN with batch norm for fast CIFAR-10 (widths: stem + 3 stages)."""
    from torch import nn

    from tocha.models.layers import Residual, Scale, conv_bn, head_layers

    stem, w1, w2, w3 = (int(w) for w in widths)
    return nn.Sequential(
        conv_bn(in_shape[0], stem, activation),  # (B, stem, H, W)
        conv_bn(stem, w1, activation, pool=True),  # (B, w1, H/2, W/2)
        Residual(w1, activation),
        conv_bn(w1, w2, activation, pool=True),  # (B, w2, H/4, W/4)
        conv_bn(w2, w3, activation, pool=True),  # (B, w3, H/8, W/8)
        Residual(w3, activation),
        nn.AdaptiveMaxPool2d(1),  # (B, w3, 1, 1): any input size works
        nn.Flatten(),
        Scale(0.125),
        *head_layers(w3, num_classes, log_softmax),
    )
