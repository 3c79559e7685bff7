"""`tocha data samples DIR`: real image files to try `predict`, `serve` and the guide's examples on,
written from the samples bundled with tocha (no download): the official test images 0..N-1 of
Fashion-MNIST and MNIST as PNG files named `<set>_<index>_<label>.png` (`fashionMNIST_00_9.png`: test
image 0, a 9, Ankle boot), the names the guide uses. Each is the very image of the official test split,
pixel for pixel (PNG is lossless)."""

from __future__ import annotations

from pathlib import Path

from tocha.data.load import load_registered
from tocha.errors import TochaError
from tocha.files import atomic_write

PREFIXES = {"fashion-mnist-sample": "fashionMNIST", "mnist-sample": "mnist"}  # the sets, as files name them


def write_samples(folder: Path, count: int = 20) -> list[Path]:
    """The first `count` test images of each bundled sample as PNG files in `folder` (made if need
    be; a file of the same name replaced); the paths written, in order."""
    import io

    from PIL import Image

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TochaError(f"cannot write into {folder}: {e.strerror or e}") from e
    written = []
    for name, prefix in PREFIXES.items():
        test = load_registered(name, None, log=lambda _line: None).test
        for i in range(min(count, len(test))):
            path = folder / f"{prefix}_{i:02d}_{int(test.labels[i])}.png"
            buffer = io.BytesIO()
            Image.fromarray(test.images[i, 0].numpy(), "L").save(buffer, format="PNG")
            png = buffer.getvalue()
            atomic_write(path, lambda f, png=png: f.write(png))
            written.append(path)
    return written
