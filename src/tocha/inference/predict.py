"""`tocha predict`: image files (or their bytes) -> top-k classes with probabilities, preprocessed
exactly as in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tocha.data.images import decode_files, image_array, load_image, mode_for_channels
from tocha.devices import resolve_device
from tocha.errors import TochaError, table_model_error
from tocha.inference.model import InferenceModel, load_inference_model


def image_mode(model: InferenceModel) -> str:
    """'L' or 'RGB': how files are decoded for this model."""
    return mode_for_channels(model.image_shape[0])


def load_for_model(paths: list[Path], model: InferenceModel) -> torch.Tensor:
    """Decode files exactly like training data: same mode (L/RGB), same size, uint8 (N, C, H, W).
    Every unreadable file is named in the one error."""
    return torch.from_numpy(decode_files([Path(p) for p in paths], image_mode(model), model.image_shape[1:]))


def decode_for_model(data: bytes, model: InferenceModel, name: str = "<bytes>") -> torch.Tensor:
    """One image file's bytes (an upload, say), decoded as `load_for_model` decodes files: (1, C, H, W)."""
    pixels = load_image(data, image_mode(model), model.image_shape[1:], name=name)
    return torch.from_numpy(np.array(pixels))[None]  # a copy: Pillow's array may be read-only


def as_batch(images: object, model: InferenceModel) -> torch.Tensor:
    """What `InferenceModel.predict` accepts, as the uint8 batch (N, C, H, W) the model takes: image
    file paths, Pillow images (decoded as files are), or uint8 arrays / tensors already at the
    model's size, one image (H, W), (H, W, C) for arrays, (C, H, W) for tensors, or a batch."""
    from PIL import Image

    items = images if isinstance(images, list | tuple) else [images]
    if not items:
        raise TochaError("no images to predict")
    if all(isinstance(i, str | Path) for i in items):
        return load_for_model([Path(i) for i in items], model)
    if all(isinstance(i, Image.Image) for i in items):
        size = model.image_shape[1:]
        return torch.from_numpy(np.stack([image_array(im, image_mode(model), size) for im in items]))
    if isinstance(images, np.ndarray):
        arr = images[None] if images.ndim == 2 else images  # (H, W): one grayscale image
        if arr.ndim == 3 and arr.shape[0] != model.image_shape[0]:  # (H, W, C), as Pillow and matplotlib
            arr = arr.transpose(2, 0, 1)
        images = torch.from_numpy(np.ascontiguousarray(arr))
    if isinstance(images, torch.Tensor):
        batch = images if images.ndim == 4 else images[None]
        if batch.dtype != torch.uint8 or tuple(batch.shape[1:]) != tuple(model.image_shape):
            raise TochaError(f"expected uint8 images {tuple(model.image_shape)} (C, H, W), got "
                             f"{batch.dtype} {tuple(batch.shape[1:])}; give paths or Pillow images to have "
                             "them decoded and resized")  # fmt: skip
        return batch
    raise TochaError("predict takes image paths, Pillow images, or uint8 numpy arrays or tensors")


def ranked_classes(model: InferenceModel, images: torch.Tensor, k: int) -> list[list[dict[str, object]]]:
    """For each uint8 image, its k most probable classes (name, index, probability), best first."""
    if k < 1:
        raise TochaError("--top-k must be at least 1")
    # softmax works for logits and for log-probabilities (the log_softmax head) alike.
    probs = model.logits(images.to(model.device)).softmax(dim=1).cpu()
    top = probs.topk(min(k, len(model.classes)), dim=1)
    return [
        [
            {"class": model.classes[i], "index": int(i), "probability": float(p)}
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        for values, indices in zip(top.values, top.indices, strict=True)
    ]


def predict_files(
    run_or_checkpoint: str | Path, paths: list[str | Path], top_k: int = 3, device: str = "cpu"
) -> list[dict[str, object]]:
    """For each file: its top-k classes (name, index, probability), most probable first."""
    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    model = load_inference_model(run_or_checkpoint, resolve_device(device))
    if model.table is not None:
        raise table_model_error(run_or_checkpoint)
    images = load_for_model([Path(p) for p in paths], model)
    ranked = ranked_classes(model, images, top_k)
    return [{"path": str(path), "top": top} for path, top in zip(paths, ranked, strict=True)]
