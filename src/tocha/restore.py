"""Rebuild a trained model and its exact preprocessing from a checkpoint alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tocha.checkpoint import load_checkpoint
from tocha.config import RunConfig, config_from_dict
from tocha.devices import resolve_precision
from tocha.engine import predict_logits
from tocha.errors import TochaError
from tocha.models import model_from_config
from tocha.preprocess import Normalize


@dataclass
class TrainedModel:
    model: nn.Module  # in eval mode, on `device`
    normalize: Normalize
    classes: list[str]
    image_shape: tuple[int, int, int]  # (C, H, W) the model was trained on
    config: RunConfig
    epoch: int
    device: torch.device
    amp_dtype: torch.dtype | None  # the precision it was evaluated in during training

    def outputs(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Model outputs for uint8 images, evaluated exactly as during training."""
        return predict_logits(
            self.model,
            images,
            self.normalize,
            batch_size,
            flip_tta=self.config.train.tta_flip,
            amp_dtype=self.amp_dtype,
        )


def restore(run_or_checkpoint: str | Path, device: torch.device) -> TrainedModel:
    """Load the checkpoint, rebuild the model from its stored config and load the weights."""
    ckpt = load_checkpoint(run_or_checkpoint)
    try:
        config = config_from_dict(ckpt["config"])
        shape = tuple(ckpt["image_shape"])
        model = model_from_config(config.model, shape, len(ckpt["classes"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise TochaError(f"{run_or_checkpoint}: checkpoint is incomplete or inconsistent ({e})") from e
    norm = ckpt["normalization"]
    channels_last = bool(config.train.channels_last)  # same layout as in training: same numbers
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return TrainedModel(
        model=model.to(device).eval(),
        normalize=Normalize(norm["mean"], norm["std"], channels_last).to(device),
        classes=list(ckpt["classes"]),
        image_shape=shape,  # type: ignore[arg-type]
        config=config,
        epoch=int(ckpt["epoch"]),
        device=device,
        amp_dtype=resolve_precision(config.train.precision, device)[1],
    )
