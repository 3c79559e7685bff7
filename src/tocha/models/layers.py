"""The networks' building blocks (torch): activations by name, the classifier head, the conv
blocks, and the TinyVGG and residual modules the families' factories put together."""

from __future__ import annotations

import torch
from torch import nn

from tocha.errors import TochaError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise TochaError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


def head_layers(in_features: int, num_classes: int, log_softmax: bool) -> list[nn.Module]:
    """The final Linear, then LogSoftmax when the loss is NLLLoss (which expects log-probs).

    Returned as a list to splice into the parent Sequential, so the Linear's weights have the
    same name with or without the LogSoftmax.
    """
    linear = nn.Linear(in_features, num_classes)
    return [linear, nn.LogSoftmax(dim=1)] if log_softmax else [linear]


# -- tinyvgg
def conv_block(in_channels: int, out_channels: int, activation_name: str) -> nn.Sequential:
    """conv3x3 (padding 1 keeps H, W) -> act -> conv3x3 -> act -> maxpool 2 (halves H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        activation(activation_name),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        activation(activation_name),
        nn.MaxPool2d(2),
    )


class TinyVGG(nn.Module):
    """block_1 -> block_2 -> classifier, with the classifier's input size derived, not typed in."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        hidden_units: int,
        activation: str,
        *,
        log_softmax: bool,
    ) -> None:
        super().__init__()
        channels, height, width = in_shape
        if height < 4 or width < 4:
            raise TochaError(f"tinyvgg needs images of at least 4x4, got {height}x{width}")
        self.block_1 = conv_block(channels, hidden_units, activation)  # (B, h, H/2, W/2)
        self.block_2 = conv_block(hidden_units, hidden_units, activation)  # (B, h, H/4, W/4)
        with torch.no_grad():
            flat = self.block_2(self.block_1(torch.zeros(1, *in_shape))).numel()  # h*(H//4)*(W//4)
        self.classifier = nn.Sequential(nn.Flatten(), *head_layers(flat, num_classes, log_softmax))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        return self.classifier(self.block_2(self.block_1(x)))


# -- resnet
def conv_bn(in_channels: int, out_channels: int, activation_name: str, pool: bool = False) -> nn.Sequential:
    """conv3x3 -> [maxpool 2] -> batch norm -> activation."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(out_channels), activation(activation_name)]
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
