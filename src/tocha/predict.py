"""`tocha predict`: image files -> top-k classes with probabilities, preprocessed as in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tocha.data.folder import decode_all
from tocha.data.images import unreadable_lines
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.restore import TrainedModel, restore


def load_for_model(paths: list[Path], trained: TrainedModel) -> torch.Tensor:
    """Decode files exactly like training data: same mode (L/RGB), same size, uint8 (N, C, H, W).
    Every unreadable file is named in the one error."""
    channels, height, width = trained.image_shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise TochaError(f"images with {channels} channels cannot be read from files")
    files = [Path(p) for p in paths]
    arrays, bad = decode_all(files, mode, (height, width))
    if len(bad) == 1:
        raise bad[0]
    if bad:
        raise TochaError(
            f"{len(bad)} of the {len(paths)} image files are not readable:\n{unreadable_lines(bad)}"
        )
    return torch.from_numpy(np.stack([arrays[f] for f in files]))


def predict_files(
    run_or_checkpoint: str | Path, paths: list[str | Path], top_k: int = 3, device: str = "cpu"
) -> list[dict[str, object]]:
    """For each file: its top-k classes (name, index, probability), most probable first."""
    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    trained = restore(run_or_checkpoint, resolve_device(device))
    images = load_for_model([Path(p) for p in paths], trained).to(trained.device)
    # softmax works for logits and for log-probabilities (the log_softmax head) alike.
    probs = trained.outputs(images).softmax(dim=1).cpu()
    k = min(top_k, len(trained.classes))
    top = probs.topk(k, dim=1)
    return [
        {
            "path": str(path),
            "top": [
                {"class": trained.classes[i], "index": int(i), "probability": float(p)}
                for p, i in zip(top.values[n].tolist(), top.indices[n].tolist(), strict=True)
            ],
        }
        for n, path in enumerate(paths)
    ]
