"""`resnet`: a small batch-norm residual network for fast CIFAR-10 training.

After the ResNet-9 of the DAWNBench / CIFAR-10 speed-run literature (D. Page, "How to train your
ResNet"; K. Jordan's airbench): a conv stem, then three stages of [conv -> maxpool -> BN -> act]
of which the first and last add a residual pair of convs, then global max pooling and a Linear
layer whose output is scaled down (a fixed temperature that speeds up early training).
"""

from __future__ import annotations

import torch
from torch import nn

from tocha.models.layers import activation as make_activation
from tocha.models.layers import head_layers
from tocha.models.registry import register_model


def conv_bn(in_channels: int, out_channels: int, activation: str, pool: bool = False) -> nn.Sequential:
    """conv3x3 -> [maxpool 2] -> batch norm -> activation."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(out_channels), make_activation(activation)]
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + f(x), with f two conv-BN-activation layers of the same width."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(channels, channels, activation), conv_bn(channels, channels, activation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Scale(nn.Module):
    """Multiply by a constant: the output temperature of the speed-run networks."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@register_model
def resnet(
    in_shape: tuple[int, int, int],
    num_classes: int,
    widths: list[int] | tuple[int, ...] = (64, 128, 256, 512),
    activation: str = "gelu",
    log_softmax: bool = False,
) -> nn.Module:
    """ResNet-9-style CNN with batch norm for fast CIFAR-10 (widths: stem + 3 stages)."""
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
