"""`tinyvgg`: the TinyVGG of the CNN Explainer and the learnpytorch course.

Two blocks of [conv3x3 -> act -> conv3x3 -> act -> maxpool2], then a Linear classifier. The
classifier's input size is derived from the input shape by running the blocks once, instead of
being hard-coded (`hidden_units*7*7` holds for 28x28 inputs only).
"""

from __future__ import annotations

import torch
from torch import nn

from tocha.errors import TochaError
from tocha.models.layers import activation as make_activation
from tocha.models.layers import head_layers
from tocha.models.registry import register_model


def conv_block(in_channels: int, out_channels: int, activation: str) -> nn.Sequential:
    """conv3x3 (padding 1 keeps H, W) -> act -> conv3x3 -> act -> maxpool 2 (halves H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        make_activation(activation),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        make_activation(activation),
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


@register_model
def tinyvgg(
    in_shape: tuple[int, int, int],
    num_classes: int,
    hidden_units: int = 10,
    activation: str = "relu",
    log_softmax: bool = False,
) -> nn.Module:
    """TinyVGG CNN: two conv blocks of `hidden_units` channels + a Linear classifier."""
    return TinyVGG(in_shape, num_classes, hidden_units, activation, log_softmax)
