"""The linear probe's features: what a pretrained backbone sees in each image, for a baseline fitted on
them (`--baselines linear_probe`): a strong, honest yardstick for fine-tuning, since it trains no
layer of the backbone (as in the ImageNet transfer studies, and fastai's and timm's docs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tocha.config import RunConfig
from tocha.data.tensorset import LoadedData
from tocha.models import classifier_name
from tocha.models.pretrained import pretrained_model
from tocha.training.recipe import imagenet_normalization

BATCH = 128  # images per forward pass: bounded memory at 224 px


def backbone_features(
    config: RunConfig, data: LoadedData, log: Callable[[str], None]
) -> Callable[[torch.Tensor], np.ndarray]:
    """uint8 images (N, C, H, W) -> the backbone's pooled features (N, D), float32: the model the
    config names with its `--pretrained` weights, its head an identity, in eval mode, the inputs
    normalised with ImageNet's mean and std as the runs normalise them."""
    model, said = pretrained_model(config.model.name, data.image_shape, len(data.classes),
                                   config.model.pretrained, "linear_probe")  # fmt: skip
    log(f"baseline linear_probe: {said.split(';')[0]}")
    parent, _, child = classifier_name(model).rpartition(".")
    setattr(model.get_submodule(parent), child, nn.Identity())  # (B, D) features, not (B, classes)
    model.eval()
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in imagenet_normalization(data.image_shape[0]))

    def featurize(images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([model((batch.float() / 255 - mean) / std).numpy()
                                   for batch in torch.as_tensor(images).split(BATCH)])  # fmt: skip

    return featurize
