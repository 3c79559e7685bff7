"""`tocha predict model.onnx IMAGE...`: predictions through onnxruntime, without importing torch.

The images are decoded by the same code as training data (`tocha.data.images`, Pillow and NumPy
only), to the size and mode stored in the file's metadata; the graph itself normalises them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tocha.data.images import decode_files, mode_for_channels
from tocha.errors import TochaError, table_model_error
from tocha.runs.trained import ONNX, read_trained

INPUT_NAME, OUTPUT_NAME = "images", "logits"


def predict_onnx(path: str | Path, images: list[str | Path], top_k: int = 3) -> list[dict[str, object]]:
    """For each image file: its top-k classes (name, index, probability), most probable first."""
    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    trained = read_trained(path, (ONNX,), "an ONNX prediction")
    if trained.table:
        raise table_model_error(path)
    channels, height, width = trained.image_shape
    batch = decode_files([Path(p) for p in images], mode_for_channels(channels), (height, width))
    probs = probabilities(trained.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0])
    return [{"path": str(image), "top": ranked(row, trained.classes, top_k)}
            for image, row in zip(images, probs, strict=True)]  # fmt: skip


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over each row, in float64."""
    logits = logits.astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def ranked(probs: np.ndarray, classes: list[str], top_k: int) -> list[dict[str, object]]:
    """One image's top-k classes, most probable first, in the shape of `tocha predict --json`."""
    best = np.argsort(-probs, kind="stable")[: min(top_k, len(classes))]
    return [{"class": classes[i], "index": int(i), "probability": float(probs[i])} for i in best]
