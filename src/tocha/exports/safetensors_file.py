"""safetensors: the model's weights, with everything needed to rebuild it as metadata.

Nothing in the file is executable (no pickle): a user loads the tensors into their own `nn.Module`
(the keys are the model's own parameter names), or `tocha.load` rebuilds the whole inference model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tocha.config import config_from_dict
from tocha.data.normalize import Normalize
from tocha.errors import TochaError
from tocha.exports.metadata import read_metadata
from tocha.inference.model import InferenceModel
from tocha.models import model_from_config


def write_safetensors(
    model: InferenceModel, path: Path, metadata: dict[str, str], example: torch.Tensor
) -> None:
    from safetensors.torch import save_file

    # contiguous: channels_last weights are stored in the standard layout; clone: shared storage
    # (tied weights) is not allowed in a safetensors file.
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.model.state_dict().items()}
    save_file(weights, str(path), metadata=metadata)


def load_safetensors(path: Path, device: torch.device | None = None) -> InferenceModel:
    """Rebuild the inference model from a tocha safetensors export."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    meta = read_metadata(raw)
    if meta.get("format") != "tocha-export":
        raise TochaError(f"{path}: a safetensors file without tocha's metadata; load it into your own module")
    config = config_from_dict(meta["config"], str(path))
    shape = tuple(meta["image_shape"])
    model = model_from_config(config.model, shape, len(meta["classes"]))  # type: ignore[arg-type]
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as e:
        why = str(e).splitlines()[0]
        raise TochaError(f"{path}: the weights do not fit {config.model.name} ({why})") from e
    norm = meta["normalization"]
    inference = InferenceModel(model, Normalize(norm["mean"], norm["std"]), tta_flip=bool(meta["tta_flip"]),
                               classes=meta["classes"], image_shape=shape, config=config,  # type: ignore[arg-type]
                               epoch=int(meta.get("epoch", 0)))  # fmt: skip
    return inference.to(device or torch.device("cpu")).eval()


def safetensors_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    model = load_safetensors(path)
    return lambda images: model.logits(torch.from_numpy(images)).numpy()
