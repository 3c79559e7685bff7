"""safetensors: the model's weights, with everything needed to rebuild it as metadata.

Nothing in the file is executable (no pickle): a user loads the tensors into their own `nn.Module`
(the keys are the model's own parameter names), or `tocha.load` rebuilds the whole inference model
(the file is read by the one reader of trained files, `runs.trained`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.inference.model import InferenceModel, load_inference_model


def export_bytes(model: InferenceModel, metadata: dict[str, str], example: torch.Tensor) -> bytes:
    """The file's bytes (written by the caller, so a full disk is an ordinary write error)."""
    from safetensors.torch import save

    # contiguous: channels_last weights are stored in the standard layout; clone: shared storage
    # (tied weights) is not allowed in a safetensors file.
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.model.state_dict().items()}
    return save(weights, metadata=metadata)


def runner(path: Path, given: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    """The file's weights rebuilt into the model (a user's model object given in Python: into it,
    since a safetensors file holds weights only)."""
    model = load_inference_model(path, torch.device("cpu"), copy.deepcopy(given))
    return lambda images: model.logits(torch.from_numpy(images)).numpy()
