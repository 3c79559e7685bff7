"""safetensors: the model's weights, with everything needed to rebuild it as metadata.

Nothing in the file is executable (no pickle): a user loads the tensors into their own `nn.Module`
(the keys are the model's own parameter names), or `tocha.load` rebuilds the whole inference model
(the file is read by the one reader of trained files, `runs.trained`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tocha.inference.model import InferenceModel, load_inference_model


def safetensors_bytes(model: InferenceModel, metadata: dict[str, str], example: torch.Tensor) -> bytes:
    """The file's bytes (written by the caller, so a full disk is an ordinary write error)."""
    from safetensors.torch import save

    # contiguous: channels_last weights are stored in the standard layout; clone: shared storage
    # (tied weights) is not allowed in a safetensors file.
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.model.state_dict().items()}
    return save(weights, metadata=metadata)


def safetensors_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    model = load_inference_model(path, torch.device("cpu"))
    return lambda images: model.logits(torch.from_numpy(images)).numpy()
