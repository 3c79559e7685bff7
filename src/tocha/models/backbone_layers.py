"""The ImageNet backbones' networks, written with torchvision's exact parameter names and shapes,
so torchvision's published weight files load into them as they are (`models.pretrained`).

MobileNetV2 follows torchvision's `models/mobilenetv2.py`; ResNet-18/34/50 its `models/resnet.py`
(v1.5: a Bottleneck's stride on its 3x3 conv). Initialisation is torchvision's too. Two additions
leave the state dict as it is: a 1-channel (grayscale) input is repeated to the 3 channels the
first conv takes (what timm does by summing that conv's weights over its input channels), and the
log-softmax head for `--loss nll` has no weights.
"""

from __future__ import annotations

import torch
from torch import nn

from tocha.errors import TochaError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation, RGB on the 0..1 scale
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: the channels rounded to a multiple of `divisor`, never more
    than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm_act(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation as MobileNetV2 uses it: conv (no bias), batch norm, ReLU6."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand (1x1), depthwise 3x3, project (1x1, linear); a residual where the
    shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(c_in * expand_ratio))
        self.use_res_connect = stride == 1 and c_in == c_out
        layers: list[nn.Module] = [conv_norm_act(c_in, hidden, kernel=1)] if expand_ratio != 1 else []
        layers += [
            conv_norm_act(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),  # pointwise, linear
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class Backbone(nn.Module):
    """What the ImageNet networks share: grayscale repeated to RGB, the log-softmax head."""

    def setup_input(self, channels: int, log_softmax: bool) -> None:
        if channels not in (1, 3):  # ImageNet's weights take RGB; a grayscale image is repeated to it
            raise TochaError(f"{type(self).__name__} takes images of 1 or 3 channels, not {channels}")
        self.repeat_gray = channels == 1  # (B, 1, H, W) -> (B, 3, H, W): the weights take RGB
        self.log_softmax = nn.LogSoftmax(dim=1) if log_softmax else nn.Identity()

    def rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if self.repeat_gray else x


class MobileNetV2(Backbone):
    """torchvision's MobileNetV2 (width 1.0): 19 feature stages, then dropout and a Linear."""

    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))  # (expansion t, channels c, blocks n, first stride s)  # fmt: skip

    def __init__(
        self, channels: int, num_classes: int, dropout: float = 0.2, log_softmax: bool = False
    ) -> None:
        super().__init__()
        self.setup_input(channels, log_softmax)
        c_in, last = make_divisible(32), make_divisible(1280)
        features: list[nn.Module] = [conv_norm_act(3, c_in, stride=2)]
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidual(c_in, make_divisible(c), s if i == 0 else 1, t))
                c_in = make_divisible(c)
        features.append(conv_norm_act(c_in, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.rgb(x))  # (B, 1280, H/32, W/32)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)  # (B, 1280)
        return self.log_softmax(self.classifier(x))


class BasicBlock(nn.Module):
    """ResNet-18/34's block: two 3x3 convs, the input added back (projected where the shape changes)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 down, 3x3 (the stride, v1.5), 1x1 up to 4x the planes."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(Backbone):
    """torchvision's ResNet: a 7x7 stem and max pool, four stages (64..512 planes), average pool, fc."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int], channels: int,
                 num_classes: int, log_softmax: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.setup_input(channels, log_softmax)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self.stage(block, 64, layers[0], 1)
        self.layer2 = self.stage(block, 128, layers[1], 2)
        self.layer3 = self.stage(block, 256, layers[2], 2)
        self.layer4 = self.stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation (the Linear keeps PyTorch's default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stage(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.rgb(x)))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512 x expansion, H/32, W/32)
        return self.log_softmax(self.fc(torch.flatten(self.avgpool(x), 1)))
