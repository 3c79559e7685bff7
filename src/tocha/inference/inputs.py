"""Inputs for a trained model, decoded exactly as its training data was: image files, their bytes,
Pillow images or arrays, to the uint8 batch (N, C, H, W) of the model's input shape.

Everything here takes the model's input shape (C, H, W), not the model: the inference model uses
it to accept what `predict` is given, and nothing here needs the model back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tocha.data.images import decode_files, image_array, load_image, mode_for_channels
from tocha.errors import TochaError

Shape = tuple[int, int, int]  # (C, H, W)


def image_mode(shape: Shape) -> str:
    """'L' or 'RGB': how files are decoded for a model of this input shape."""
    return mode_for_channels(shape[0])


def decode_paths(paths: list[Path], shape: Shape) -> torch.Tensor:
    """Files decoded like training data: same mode (L/RGB), same size, uint8 (N, C, H, W). Every
    unreadable file is named in the one error."""
    return torch.from_numpy(decode_files([Path(p) for p in paths], image_mode(shape), shape[1:]))


def decode_bytes(data: bytes, shape: Shape, name: str = "<bytes>") -> torch.Tensor:
    """One image file's bytes (an upload, say), decoded as files are: (1, C, H, W)."""
    pixels = load_image(data, image_mode(shape), shape[1:], name=name)
    return torch.from_numpy(np.array(pixels))[None]  # a copy: Pillow's array may be read-only


def as_batch(images: object, shape: Shape) -> torch.Tensor:
    """What `InferenceModel.predict` accepts, as the uint8 batch (N, C, H, W) the model takes: image
    file paths, Pillow images (decoded as files are), or uint8 arrays / tensors already at the
    model's size, one image (H, W), (H, W, C) for arrays, (C, H, W) for tensors, or a batch."""
    from PIL import Image

    items = images if isinstance(images, list | tuple) else [images]
    if not items:
        raise TochaError("no images to predict")
    if all(isinstance(i, str | Path) for i in items):
        return decode_paths([Path(i) for i in items], shape)
    if all(isinstance(i, Image.Image) for i in items):
        return torch.from_numpy(np.stack([image_array(im, image_mode(shape), shape[1:]) for im in items]))
    if isinstance(images, np.ndarray):
        if images.size == 0:
            raise TochaError(f"no images to predict (an empty array of shape {images.shape})")
        arr = images[None] if images.ndim == 2 else images  # (H, W): one grayscale image
        if arr.ndim == 3 and arr.shape[0] != shape[0]:  # (H, W, C), as Pillow and matplotlib
            arr = arr.transpose(2, 0, 1)
        images = torch.from_numpy(np.ascontiguousarray(arr))
    if isinstance(images, torch.Tensor):
        if images.numel() == 0:
            raise TochaError(f"no images to predict (an empty batch of shape {tuple(images.shape)})")
        batch = images if images.ndim == 4 else images[None]
        if batch.dtype != torch.uint8 or tuple(batch.shape[1:]) != tuple(shape):
            raise TochaError(
                f"expected uint8 images {tuple(shape)} (C, H, W), got "
                f"{batch.dtype} {tuple(batch.shape[1:])}; give paths or Pillow images to have "
                "them decoded and resized"
            )
        return batch
    raise TochaError("predict takes image paths, Pillow images, or uint8 numpy arrays or tensors")
