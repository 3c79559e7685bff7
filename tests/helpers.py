"""Small builders shared by the tests: IDX bytes, PNG folders, running the CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 array -> IDX bytes (magic 0 0 8 ndim, big-endian dims, payload)."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_image_folder(root: Path, classes: dict[str, int], size=(12, 10), mode="L", seed=0) -> None:
    """ROOT/<class>/<i>.png with random pixels: `classes` maps class name -> image count."""
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size[0], size[1], channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(
                root / name / f"{i}.png"
            )


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m tocha ARGS` in a real subprocess; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tocha", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
