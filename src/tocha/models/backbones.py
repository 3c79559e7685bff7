"""`mobilenet_v2`, `resnet18`, `resnet34`, `resnet50`: the ImageNet backbones, torchvision's networks
with torchvision's parameter names (`models.backbone_layers`), so `--pretrained imagenet` starts them
from torchvision's published ImageNet weights (`models.pretrained`). tocha's `resnet` is another
network: a small ResNet-9 for fast CIFAR-10 training from scratch, with names of its own.
"""

from __future__ import annotations

from typing import Any

from tocha.models.registry import LOG_SOFTMAX, ModelOption, register_model


@register_model(
    dropout=ModelOption(
        "the dropout before the classifier (torchvision's 0.2)",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ),  # fmt: skip
    log_softmax=LOG_SOFTMAX,
)
def mobilenet_v2(
    in_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.2, *, log_softmax: bool = False
) -> Any:
    """MobileNetV2, torchvision's (3.5 M parameters at 1000 classes); --pretrained imagenet."""
    from tocha.models.backbone_layers import MobileNetV2

    return MobileNetV2(in_shape[0], num_classes, dropout, log_softmax=log_softmax)


def torchvision_resnet(
    depth: int, in_shape: tuple[int, int, int], num_classes: int, log_softmax: bool
) -> Any:
    from tocha.models.backbone_layers import BasicBlock, Bottleneck, ResNet

    block, layers = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                     50: (Bottleneck, (3, 4, 6, 3))}[depth]  # fmt: skip
    return ResNet(block, layers, in_shape[0], num_classes, log_softmax=log_softmax)


@register_model(log_softmax=LOG_SOFTMAX)
def resnet18(in_shape: tuple[int, int, int], num_classes: int, *, log_softmax: bool = False) -> Any:
    """ResNet-18, torchvision's (11.7 M parameters at 1000 classes); --pretrained imagenet."""
    return torchvision_resnet(18, in_shape, num_classes, log_softmax)


@register_model(log_softmax=LOG_SOFTMAX)
def resnet34(in_shape: tuple[int, int, int], num_classes: int, *, log_softmax: bool = False) -> Any:
    """ResNet-34, torchvision's (21.8 M parameters at 1000 classes); --pretrained imagenet."""
    return torchvision_resnet(34, in_shape, num_classes, log_softmax)


@register_model(log_softmax=LOG_SOFTMAX)
def resnet50(in_shape: tuple[int, int, int], num_classes: int, *, log_softmax: bool = False) -> Any:
    """ResNet-50 (v1.5), torchvision's (25.6 M parameters at 1000 classes); --pretrained imagenet."""
    return torchvision_resnet(50, in_shape, num_classes, log_softmax)
