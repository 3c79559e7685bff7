"""Image files written here with Pillow and bytes: the modes tocha converts, each with the exact
pixels it must decode to, and damaged or hostile files (empty, truncated, not an image, bombs)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 3, 4  # every odd-mode file below: small, so no resizing is needed to compare pixels

PALETTE = [(255, 0, 0), (0, 128, 255), (10, 20, 30), (200, 200, 0)]
INDICES = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 1, 1]], dtype=np.uint8)  # (H, W)


def _palette_image() -> Image.Image:
    im = Image.fromarray(INDICES, "P")
    im.putpalette([v for rgb in PALETTE for v in rgb])
    return im


def palette_png(path: Path) -> np.ndarray:
    """Palette PNG, no transparency: each pixel is its palette colour."""
    _palette_image().save(path)
    return np.array(PALETTE, dtype=np.uint8)[INDICES]


def palette_alpha_png(path: Path) -> np.ndarray:
    """Palette PNG with a tRNS chunk: entry 1 half transparent, entry 2 fully transparent."""
    alphas = [255, 128, 0, 255]
    _palette_image().save(path, transparency=bytes(alphas))
    colours = np.array(PALETTE, dtype=np.uint32)
    a = np.array(alphas, dtype=np.uint32)[:, None]
    return ((colours * a + 127) // 255).astype(np.uint8)[INDICES]  # composited onto black


GRAY16 = np.array([[0xABCD, 0x0000, 0xFFFF, 0x00FF], [0x0100, 0x7F80, 0x8000, 0x1234]] * 2)[:H]


def gray16_png(path: Path) -> np.ndarray:
    """16-bit grayscale PNG (Pillow mode I;16): each value keeps its high byte."""
    Image.fromarray(GRAY16.astype(np.uint16)).save(path)
    return np.repeat((GRAY16 >> 8).astype(np.uint8)[..., None], 3, axis=2)


CMYK = (10, 200, 30, 40)


def cmyk_jpeg(path: Path) -> np.ndarray:
    """CMYK JPEG of one colour: expected is what Pillow's own convert('RGB') gives for the file."""
    Image.new("CMYK", (W, H), CMYK).save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
        return np.asarray(im.convert("RGB"))


RGBA = np.array(
    [
        [(200, 100, 50, 255), (200, 100, 50, 128), (255, 0, 0, 0), (0, 255, 0, 0)],
        [(10, 20, 30, 255), (255, 255, 255, 1), (255, 255, 255, 254), (90, 60, 30, 200)],
        [(0, 0, 0, 0), (1, 2, 3, 255), (128, 128, 128, 128), (255, 255, 255, 255)],
    ],
    dtype=np.uint8,
)


def rgba_png(path: Path) -> np.ndarray:
    """RGBA PNG: opaque pixels unchanged, transparent ones black whatever colour they hide."""
    Image.fromarray(RGBA, "RGBA").save(path)
    return ((RGBA[..., :3].astype(np.uint32) * RGBA[..., 3:] + 127) // 255).astype(np.uint8)


LA = np.array(
    [[(200, 255), (200, 128), (255, 0), (77, 255)], [(0, 0), (255, 1), (100, 200), (255, 255)]] * 2,
    dtype=np.uint8,
)[:H]


def la_png(path: Path) -> np.ndarray:
    """Grayscale + alpha PNG (LA), composited onto black like RGBA."""
    Image.fromarray(LA, "LA").save(path)
    gray = ((LA[..., 0].astype(np.uint32) * LA[..., 1] + 127) // 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


# file name -> writer returning the expected RGB pixels (H, W, 3)
ODD_MODES: dict[str, Callable[[Path], np.ndarray]] = {
    "palette.png": palette_png,
    "palette_alpha.png": palette_alpha_png,
    "gray16.png": gray16_png,
    "cmyk.jpg": cmyk_jpeg,
    "rgba.png": rgba_png,
    "la.png": la_png,
}
GRAYSCALE_FILES = ("gray16.png", "la.png")  # their expected RGB has three equal channels


def header_only_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height 8-bit grayscale pixels, then a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _side(factor: float) -> int:
    return int((factor * Image.MAX_IMAGE_PIXELS) ** 0.5)


def truncated_jpeg(path: Path) -> None:
    """A real JPEG with random pixels, cut in half: the header reads, the pixels do not."""
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# file name -> (writer, a fragment of the reason tocha gives)
BAD_FILES: dict[str, tuple[Callable[[Path], object], str]] = {
    "empty.png": (lambda p: p.write_bytes(b""), "empty file"),
    "cut.jpg": (truncated_jpeg, "truncated"),
    "notes.png": (lambda p: p.write_text("this is text, not a PNG\n"), "not an image"),
    # Over 2x Pillow's pixel limit Image.open raises; between 1x and 2x it only warns, and decodes.
    "bomb.png": (lambda p: p.write_bytes(header_only_png(_side(4.5), _side(4.5))), "decompression bomb"),
    "bomb_warns.png": (
        lambda p: p.write_bytes(header_only_png(_side(1.5), _side(1.5))),
        "decompression bomb",
    ),
}


def write_bad(folder: Path, names: list[str] | None = None, prefix: str = "") -> list[Path]:
    """The BAD_FILES (all, or those named) in `folder`, file names prefixed with `prefix`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or list(BAD_FILES):
        path = folder / f"{prefix}{name}"
        BAD_FILES[name][0](path)
        paths.append(path)
    return paths
