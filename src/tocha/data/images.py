"""Image files -> uint8 arrays (C, H, W), the one decode used by image folders and `predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tocha.errors import TochaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def peek_image(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the header only, without decoding pixels."""
    try:
        with Image.open(path) as im:
            return im.mode, im.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise TochaError(f"{path}: not a readable image ({e})") from e


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to 'L' or 'RGB'; palette and alpha images go through RGBA first so colours are kept."""
    if im.mode == mode:
        return im
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    if im.mode.startswith("I;16") or im.mode == "I":
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip at 255.
        arr = np.asarray(im, dtype=np.uint32) >> 8
        im = Image.fromarray(arr.astype(np.uint8), "L")
    return im.convert(mode)


def load_image(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode `path`, convert to `mode` ('L' or 'RGB'), resize to `size` (H, W): uint8 (C, H, W)."""
    height, width = size
    try:
        with Image.open(path) as im:
            im.load()
            im = to_mode(im, mode)
            if im.size != (width, height):
                im = im.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise TochaError(f"{path}: not a readable image ({e})") from e
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
