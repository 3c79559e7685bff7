"""The served model, loaded once: bytes in, probabilities out, decoded exactly as `tocha predict`.

A run folder, a checkpoint or a .safetensors export is served by the inference model (torch); an
.onnx export by onnxruntime, without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.images import load_image, mode_for_channels
from tocha.errors import table_model_error
from tocha.runs.folder import RunFolder

FIGURES = (RunFolder.CURVES, RunFolder.CONFUSION)  # the only files the server ever reads for a client


@dataclass
class Predictor:
    """What the server needs of a model: its card, how to decode an upload, how to predict."""

    card: dict[str, Any]
    classes: list[str]
    image_shape: tuple[int, int, int]  # (C, H, W)
    run: Any  # uint8 (N, C, H, W) numpy -> logits (N, classes) numpy
    figures: dict[str, Path] = field(default_factory=dict)  # name -> path, fixed at start

    def decode(self, data: bytes, name: str) -> np.ndarray:
        """One upload -> uint8 (C, H, W), as `tocha predict` decodes a file (UnreadableImage if not)."""
        return load_image(data, mode_for_channels(self.image_shape[0]), self.image_shape[1:], name=name)


def load_predictor(source: str | Path) -> Predictor:
    path = Path(source)
    if path.suffix == ".onnx":
        return onnx_predictor(path)
    return torch_predictor(path)


def onnx_predictor(path: Path) -> Predictor:
    from tocha.exports.onnx_predict import INPUT_NAME, OUTPUT_NAME, read_onnx_metadata

    meta = read_onnx_metadata(path)
    if meta.get("table"):
        raise table_model_error(path)
    session = meta.pop("session")
    card = {
        "source": path.name,
        "runtime": "onnxruntime",
        "model": meta["model"],
        "dataset": meta["dataset"],
        "classes": meta["classes"],
        "image_shape": meta["image_shape"],
        "test_accuracy": meta.get("test_accuracy"),
        "parameters": None,
        "epochs": meta.get("epoch"),
    }
    return Predictor(card, meta["classes"], tuple(meta["image_shape"]),
                     lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: images})[0])  # fmt: skip


def torch_predictor(path: Path) -> Predictor:
    import torch

    from tocha.inference.model import load_inference_model

    model = load_inference_model(path, torch.device("cpu"))
    if model.table is not None:
        raise table_model_error(path)
    folder = RunFolder(path if path.is_dir() else path.parent)
    accuracy = (
        folder.read_summary().final_test.get("accuracy") if folder.file(folder.SUMMARY).is_file() else None
    )
    card = {
        "source": path.name,
        "runtime": "torch",
        "model": model.config.model.name,
        "dataset": model.config.data.name,
        "classes": model.classes,
        "image_shape": list(model.image_shape),
        "test_accuracy": accuracy,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": model.epoch,
    }

    def run(images: np.ndarray) -> np.ndarray:
        return model.logits(torch.from_numpy(images)).numpy()

    figures = {name: folder.file(name) for name in FIGURES if folder.file(name).is_file()}
    return Predictor(card, model.classes, tuple(model.image_shape), run, figures)  # type: ignore[arg-type]
