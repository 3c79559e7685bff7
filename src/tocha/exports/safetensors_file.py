"""safetensors: the model's weights, with everything needed to rebuild it as metadata.

Nothing in the file is executable (no pickle): a user loads the tensors into their own `nn.Module`
(the keys are the model's own parameter names), or `tocha.load` rebuilds the whole inference model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.config import config_from_dict
from tocha.errors import TochaError
from tocha.exports.metadata import read_metadata
from tocha.inference.model import InferenceModel, assemble


def write_safetensors(
    model: InferenceModel, path: Path, metadata: dict[str, str], example: torch.Tensor
) -> None:
    from safetensors.torch import save_file

    # contiguous: channels_last weights are stored in the standard layout; clone: shared storage
    # (tied weights) is not allowed in a safetensors file.
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.model.state_dict().items()}
    save_file(weights, str(path), metadata=metadata)


def read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A tocha safetensors export's metadata (decoded) and weights."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = read_metadata(f.metadata() or {})
    if meta.get("format") != "tocha-export":
        raise TochaError(f"{path}: a safetensors file without tocha's metadata; load it into your own module")
    return meta, load_file(str(path))


def load_safetensors(path: Path, device: torch.device | None = None) -> InferenceModel:
    """Rebuild the inference model from a tocha safetensors export."""
    meta, weights = read_safetensors(path)
    config = config_from_dict(meta["config"], str(path))
    try:
        inference = assemble(config, meta["classes"], meta["image_shape"], weights, meta["normalization"],
                             epoch=int(meta.get("epoch", 0)), tta_flip=bool(meta["tta_flip"]),
                             table=meta.get("table"))  # fmt: skip
    except RuntimeError as e:
        why = str(e).splitlines()[0]
        raise TochaError(f"{path}: the weights do not fit {config.model.name} ({why})") from e
    return inference.to(device or torch.device("cpu")).eval()


def safetensors_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    model = load_safetensors(path)
    return lambda images: model.logits(torch.from_numpy(images)).numpy()
