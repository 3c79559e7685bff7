"""Image files (or their bytes) -> uint8 arrays (C, H, W), the one decode of image folders and `predict`.

Conversions, the same for training and `predict`: a palette image takes its palette's colours; 16-bit
grayscale keeps its high byte (0xABCD -> 0xAB); CMYK and other modes go through Pillow's convert();
an alpha channel is composited onto black (value * alpha / 255, rounded), so a transparent pixel is
black whatever colour it hides. An image over Pillow's pixel limit (Image.MAX_IMAGE_PIXELS) is
refused before its pixels are decoded.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tocha.data.progress import stage
from tocha.errors import TochaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# In image folders' cache keys: bump when a conversion changes, so older decodes are not reused.
DECODE_VERSION = 2
SHOWN = 10  # unreadable files named in a message; the rest are counted
# What Pillow raises for a damaged or hostile file (UnidentifiedImageError is an OSError). Its
# plugins, TIFF's above all, also let through the errors Image.open itself treats as "not this format".
_DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    IndexError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


class UnreadableImage(TochaError):
    """An image file that cannot be decoded; `reason` says why without repeating the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a readable image ({reason})")
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # Rebuilt from its own arguments, not its message: raised in a decoding process, it reaches
        # the prepare's process pickled (else unpickling it broke the pool: a traceback, not a line).
        return type(self), (self.path, self.reason)


def _reason(source: Path | bytes, e: Exception) -> str:
    if isinstance(e, UnidentifiedImageError):  # its own message repeats the path
        empty = (
            len(source) == 0 if isinstance(source, bytes) else source.is_file() and source.stat().st_size == 0
        )
        return "empty file" if empty else "not an image Pillow knows"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _check_pixels(im: Image.Image) -> None:
    """Pillow decodes images between 1x and 2x its pixel limit with only a warning: refuse them too."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and im.width * im.height > limit:
        raise Image.DecompressionBombError(
            f"{im.width}x{im.height} pixels, over Pillow's limit of {limit} (Image.MAX_IMAGE_PIXELS); "
            "refused as a possible decompression bomb"
        )


@contextmanager
def strict_pixel_limit() -> Iterator[None]:
    """Turn Pillow's DecompressionBombWarning into an error for the block (no warning is printed and
    the file is refused). The filter list is process-wide: enter it in the main thread, around any
    decoding threads."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def decode_all(
    paths: list[Path], mode: str, size: tuple[int, int], log: Callable[[str], None] | None = None
) -> tuple[dict[Path, np.ndarray], list[UnreadableImage]]:
    """Each readable image as uint8 (C, H, W) by path, and the files that failed; decoded in threads.
    `log`: where a decoding that takes over a second says how it goes (`data.progress`)."""

    def decode(path: Path) -> np.ndarray | UnreadableImage:
        try:
            return load_image(path, mode, size)
        except UnreadableImage as e:
            return e

    with (
        strict_pixel_limit(),
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        stage("decoding images", len(paths), "image", log) as progress,
    ):
        results = []
        for result in pool.map(decode, paths):
            results.append(result)
            progress.advance()
    arrays = {p: r for p, r in zip(paths, results, strict=True) if isinstance(r, np.ndarray)}
    return arrays, [r for r in results if isinstance(r, UnreadableImage)]


def decode_files(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    """Image files decoded as training data is (`mode` 'L' or 'RGB', resized to `size`), stacked: uint8
    (N, C, H, W). Every unreadable file is named in the one error (or is the error, alone)."""
    arrays, bad = decode_all(paths, mode, size)
    if len(bad) == 1:
        raise bad[0]
    if bad:
        raise TochaError(
            f"{len(bad)} of the {len(paths)} image files are not readable:\n{unreadable_lines(bad)}"
        )
    return np.stack([arrays[p] for p in paths])


MODE_WORDS = {"L": "grayscale", "LA": "grayscale with alpha", "1": "black and white", "P": "palette",
              "RGB": "RGB", "RGBA": "RGBA", "CMYK": "CMYK", "I;16": "16-bit grayscale"}  # fmt: skip


def conversion(path: Path, mode: str, size: tuple[int, int]) -> str | None:
    """What decoding the file for a model of `mode` and `size` (H, W) changes, in words ("resized
    from 32x32 to 28x28, RGB to grayscale"); None when it is taken as it is. From the header only."""
    return changes_made(*peek_image(path), mode, size)


def changes_made(
    found_mode: str, found_size: tuple[int, int], mode: str, size: tuple[int, int]
) -> str | None:
    """What decoding an image of `found_mode` and `found_size` (W, H) for `mode` and `size` (H, W)
    changes, in words; None for nothing (a file's, or an upload's to `tocha serve`)."""
    width, height = found_size
    changes = []
    if (height, width) != tuple(size):
        changes.append(f"resized from {width}x{height} to {size[1]}x{size[0]}")
    if found_mode != mode:
        changes.append(f"{MODE_WORDS.get(found_mode, found_mode)} to {MODE_WORDS[mode]}")
    return ", ".join(changes) or None


def mode_for_channels(channels: int) -> str:
    """'L' or 'RGB': how files are decoded for a model of `channels` input channels."""
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise TochaError(f"images with {channels} channels cannot be read from files")
    return mode


def unreadable_lines(bad: list[UnreadableImage], base: Path | None = None, shown: int = SHOWN) -> str:
    """One indented line per file (path relative to `base`) and why: the first `shown`, then a count."""

    def name(path: Path) -> str:
        return str(path.relative_to(base)) if base and path.is_relative_to(base) else str(path)

    lines = [f"  {name(e.path)}: {e.reason}" for e in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more")
    return "\n".join(lines)


def check_regular(path: Path) -> None:
    """A FIFO would block the reader forever and a device would never end: only regular files."""
    if path.exists() and not path.is_file():
        raise UnreadableImage(path, "not a regular file")


def peek_image(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the header only, without decoding pixels."""
    check_regular(path)
    try:
        with Image.open(path) as im:
            _check_pixels(im)
            return im.mode, im.size
    except _DECODE_ERRORS as e:
        raise UnreadableImage(path, _reason(path, e)) from e


def peek_bytes(data: bytes, name: str) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) of an image file's bytes, from its header only (an upload's size is
    known before a pixel is decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.mode, im.size
    except _DECODE_ERRORS as e:
        raise UnreadableImage(Path(name), _reason(data, e)) from e


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to 'L' or 'RGB' by the rules in the module docstring."""
    if im.mode == mode:
        return im
    if im.mode == "P":  # the palette's colours; a transparent palette entry becomes alpha
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode.startswith("I;16") or im.mode == "I":
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip at 255.
        arr = np.asarray(im, dtype=np.uint32) >> 8
        im = Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA"):
        # Composite onto black: transparent pixels often hide arbitrary colours, which dropping
        # the alpha channel would let through. round(v * a / 255) == (v * a + 127) // 255: 255 is odd.
        arr = np.asarray(im, dtype=np.uint16)  # (H, W, 4) or (H, W, 2)
        blended = ((arr[..., :-1] * arr[..., -1:] + 127) // 255).astype(np.uint8)
        im = Image.fromarray(blended[..., 0] if im.mode == "LA" else blended)  # L or RGB
    return im.convert(mode)


def load_image(source: Path | bytes, mode: str, size: tuple[int, int], name: str | None = None) -> np.ndarray:
    """Decode a file, or an image file's bytes (`name` then says what to call it in messages),
    convert to `mode` ('L' or 'RGB') and resize to `size` (H, W): uint8 (C, H, W)."""
    path = Path(name) if name is not None else source if isinstance(source, Path) else Path("<bytes>")
    if isinstance(source, Path):
        check_regular(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            _check_pixels(im)
            im.load()
            return image_array(im, mode, size)
    except _DECODE_ERRORS as e:
        raise UnreadableImage(path, _reason(source, e)) from e


def image_array(im: Image.Image, mode: str, size: tuple[int, int]) -> np.ndarray:
    """A decoded Pillow image converted to `mode` and resized to `size` (H, W): uint8 (C, H, W)."""
    height, width = size
    im = to_mode(im, mode)
    if im.size != (width, height):
        im = im.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
