"""Image folders: `ROOT/<class>/*.png`, or `ROOT/train/<class>/...` and `ROOT/test/<class>/...`.

Images are decoded once with Pillow (in threads: Pillow releases the GIL while decoding) into the
same uint8 (N, C, H, W) form as the built-in datasets, and cached.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from tocha.data.cache import cached_tensors, file_stamp, fingerprint
from tocha.data.images import GRAYSCALE_MODES, IMAGE_SUFFIXES, load_image, peek_image
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError

Samples = list[tuple[Path, int]]


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def scan_folder(root: Path) -> tuple[list[str], dict[str, Samples]]:
    """Class names and (path, label) lists per split: {'train', 'test'} or {'all'}."""
    if not root.is_dir():
        raise TochaError(f"{root}: not a folder")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    split_roots = {"train": root / "train", "test": root / "test"} if has_splits else {"all": root}
    classes = [p.name for p in _class_folders(next(iter(split_roots.values())))]
    if not classes:
        raise TochaError(
            f"{root}: no class folders found; expected {root}/<class name>/<image files> "
            f"(or train/<class>/ and test/<class>/)"
        )
    splits: dict[str, Samples] = {}
    for split, split_root in split_roots.items():
        found = [p.name for p in _class_folders(split_root)]
        if found != classes:
            raise TochaError(f"{split_root}: class folders {found} differ from {classes}")
        samples: Samples = []
        for label, name in enumerate(classes):
            images = _images_in(split_root / name)
            if not images:
                raise TochaError(
                    f"{split_root / name}: class folder holds no image files "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            samples += [(path, label) for path in images]
        splits[split] = samples
    return classes, splits


def choose_format(paths: list[Path]) -> tuple[str, tuple[int, int]]:
    """'L' when every image is grayscale, else 'RGB'; the most common (H, W)."""
    headers = [peek_image(p) for p in paths]
    mode = "L" if all(m in GRAYSCALE_MODES for m, _ in headers) else "RGB"
    (width, height), _ = Counter(s for _, s in headers).most_common(1)[0]
    return mode, (height, width)


def decode_all(paths: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    """All images as one uint8 array (N, C, H, W), decoded in parallel threads."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        arrays = list(pool.map(lambda p: load_image(p, mode, size), paths))
    return np.stack(arrays)


def seeded_split(samples: Samples, test_fraction: float, seed: int) -> dict[str, Samples]:
    """Hold out `test_fraction` of each class (at least one image), chosen by a seeded permutation."""
    rng = np.random.default_rng(seed)
    train: Samples = []
    test: Samples = []
    for label in sorted({lbl for _, lbl in samples}):
        members = [s for s in samples if s[1] == label]
        if len(members) < 2:
            raise TochaError(
                f"class {label} has {len(members)} image(s): a train/test split needs at least 2 per class"
            )
        order = rng.permutation(len(members))
        n_test = min(len(members) - 1, max(1, round(len(members) * test_fraction)))
        test += [members[i] for i in order[:n_test]]
        train += [members[i] for i in order[n_test:]]
    return {"train": train, "test": test}


def load_folder(
    root: Path,
    image_size: tuple[int, int] | None = None,
    mode: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    name: str | None = None,
) -> LoadedData:
    """Load an image folder as a LoadedData; decoded tensors are cached by file fingerprints."""
    root = Path(root)
    classes, splits = scan_folder(root)
    if "all" in splits:
        splits = seeded_split(splits["all"], test_fraction, split_seed)
    all_paths = [p for s in splits.values() for p, _ in s]
    if image_size is None or mode is None:
        found_mode, found_size = choose_format(all_paths)
        mode = mode or found_mode
        image_size = tuple(image_size or found_size)
    listing = sorted((split, file_stamp(p), lbl) for split, s in splits.items() for p, lbl in s)
    key = fingerprint(mode, tuple(image_size), listing)

    def build() -> dict[str, torch.Tensor]:
        out = {}
        for split, samples in splits.items():
            images = decode_all([p for p, _ in samples], mode, image_size)
            out[f"{split}_images"] = torch.from_numpy(images)
            out[f"{split}_labels"] = torch.tensor([lbl for _, lbl in samples], dtype=torch.int64)
        return out

    t = cached_tensors("folder", key, build)
    return LoadedData(
        name=name or root.resolve().name,
        classes=classes,
        train=TensorSet(t["train_images"], t["train_labels"]),
        test=TensorSet(t["test_images"], t["test_labels"]),
        source=f"image folder {root.resolve()}",
        details={"mode": mode, "image_size": list(image_size)},
    )
