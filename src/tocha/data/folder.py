"""Image folders: `ROOT/<class>/*.png`, or `ROOT/train/<class>/...` and `ROOT/test/<class>/...`
(and `ROOT/val/<class>/...` or `ROOT/valid/...`, the validation split, when there is one).

Images are decoded once with Pillow (in threads: Pillow releases the GIL while decoding) into the
same uint8 (N, C, H, W) form as the built-in datasets, and cached. Unreadable files either stop the
load, all of them named (`on_bad_image="fail"`), or are left out with a warning (`"skip"`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tocha.data.cache import cached_tensors, file_stamp, fingerprint
from tocha.data.images import (
    DECODE_VERSION,
    GRAYSCALE_MODES,
    IMAGE_SUFFIXES,
    SHOWN,
    UnreadableImage,
    decode_all,
    peek_image,
    strict_pixel_limit,
    unreadable_lines,
)
from tocha.data.progress import stage
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.memory import check_fits

Samples = list[tuple[Path, int]]
VAL_FOLDERS = ("val", "valid")  # a folder's own validation split, as ImageNet's and Kaggle's are named
SPLIT_NAMES = {"train", "test", *VAL_FOLDERS}  # never classes: a folder holding only these is a split
Header = tuple[str, tuple[int, int]]  # mode, (W, H) as Pillow gives them
ON_BAD_IMAGE = ("fail", "skip")


def _class_folders(root: Path, within: Path, skipped: list[Path]) -> list[Path]:
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [p for p in found if _inside(p, within, skipped)]


def _images_in(folder: Path, within: Path, skipped: list[Path]) -> list[Path]:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [p for p in found if _inside(p, within, skipped)]


def _inside(path: Path, within: Path | None, skipped: list[Path]) -> bool:
    """Whether `path` stays inside the dataset root once links are resolved (None: follow links)."""
    if within is None or path.resolve().is_relative_to(within):
        return True
    skipped.append(path)
    return False


def scan_folder(
    root: Path, follow_symlinks: bool = False, log: Callable[[str], None] = print
) -> tuple[list[str], dict[str, Samples]]:
    """Class names and (path, label) lists per split: {'train', 'test'} (and 'val' from `val/` or
    `valid/`) or {'all'}. A link that leads out of `root` (a class folder linked to `/`, say) is left
    out, and said, unless `follow_symlinks`."""
    if not root.is_dir():
        raise TochaError(f"{root}: not a folder")
    within, skipped = None if follow_symlinks else root.resolve(), []
    val = next((root / n for n in VAL_FOLDERS if (root / n).is_dir()), None)
    if (root / "train").is_dir() and (root / "test").is_dir():
        split_roots = {"train": root / "train", "test": root / "test"}
    elif (root / "train").is_dir() and val is not None:  # no test/: it is carved from train/
        split_roots = {"all": root / "train"}
    else:
        split_roots, val = {"all": root}, None
    if val is not None:
        split_roots["val"] = val
    for split_root in split_roots.values():
        if not _inside(split_root, within, []):
            raise TochaError(
                f"{split_root} is a link out of {root} (to {split_root.resolve()}), left out: "
                "--follow-symlinks follows it"
            )
    classes = [p.name for p in _class_folders(next(iter(split_roots.values())), within, skipped)]
    check_classes(root, classes, skipped)
    if split_roots == {"all": root} and len(classes) > 1 and set(classes) <= SPLIT_NAMES:
        raise TochaError(
            f"{root} holds split folders ({', '.join(c + '/' for c in classes)}), not classes: "
            "tocha reads train/<class>/ with test/<class>/ or val/<class>/ beside it "
            "(and a folder of class folders alone)"
        )
    splits: dict[str, Samples] = {}
    for split, split_root in split_roots.items():
        found = [p.name for p in _class_folders(split_root, within, [])]
        if found != classes:
            raise TochaError(
                f"{split_root}: class folders {found} differ from {classes} (every split "
                "holds the same class folders)"
            )
        samples: Samples = []
        for label, name in enumerate(classes):
            images = _images_in(split_root / name, within, skipped)
            if not images:
                raise TochaError(
                    f"{split_root / name}: class folder holds no image files "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            samples += [(path, label) for path in images]
        splits[split] = samples
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        log(
            f"warning: left out {len(skipped)} links that lead out of {root} ({shown}); "
            "--follow-symlinks follows them"
        )
    return classes, splits


def check_classes(root: Path, classes: list[str], skipped: list[Path]) -> None:
    """A classifier needs two classes or more: none or one is an error naming the folder, what was
    found, and the links left out."""
    left_out = f"; links left out: {', '.join(str(p) for p in skipped[:5])}" if skipped else ""
    if not classes:
        raise TochaError(
            f"{root}: no class folders found; expected {root}/<class name>/<image files> "
            f"(or train/<class>/ and test/<class>/){left_out}"
        )
    if len(classes) == 1:
        split = classes[0] in SPLIT_NAMES
        hint = (
            f"; {classes[0]}/ looks like a split: tocha reads {root}/train/<class>/ with "
            f"{root}/test/<class>/ or {root}/val/<class>/ beside it"
            if split
            else ""
        )
        raise TochaError(
            f"{root}: one class folder ({classes[0]}): a classifier needs two or more, one "
            f"folder per class{hint}{left_out}"
        )


def read_headers(
    paths: list[Path], bad: list[UnreadableImage] | None = None, log: Callable[[str], None] | None = None
) -> dict[Path, Header]:
    """(mode, (W, H)) of each file from its header. A file whose header cannot be read raises, or
    is appended to `bad` when a list is given. `log`: where a slow reading says how it goes."""
    headers = {}
    with strict_pixel_limit(), stage("reading image headers", len(paths), "file", log) as progress:
        for p in paths:
            progress.advance()
            try:
                headers[p] = peek_image(p)
            except UnreadableImage as e:
                if bad is None:
                    raise
                bad.append(e)
    if not headers:
        raise TochaError(f"none of the {len(paths)} image files is readable:\n{unreadable_lines(bad or [])}")
    return headers


def format_of(headers: list[Header]) -> tuple[str, tuple[int, int]]:
    """'L' when every image is grayscale, else 'RGB'; the most common (H, W)."""
    mode = "L" if all(m in GRAYSCALE_MODES for m, _ in headers) else "RGB"
    (width, height), _ = Counter(s for _, s in headers).most_common(1)[0]
    return mode, (height, width)


def choose_format(paths: list[Path], bad: list[UnreadableImage] | None = None) -> tuple[str, tuple[int, int]]:
    """The format of `paths` from their headers only; unreadable headers raise, or go to `bad`."""
    return format_of(list(read_headers(paths, bad).values()))


def unreadable_error(root: Path, bad: list[UnreadableImage]) -> TochaError:
    """The error for on_bad_image='fail': every unreadable file with its reason (the first few, a count)."""
    how = "pass --on-bad-image skip (config data.on_bad_image) to leave them out"
    if len(bad) == 1:
        return TochaError(f"{bad[0]}; fix or remove it, or {how}")
    return TochaError(
        f"{root}: {len(bad)} image files are not readable; fix or remove them, or {how}:\n"
        + unreadable_lines(bad, root)
    )


def skipped_warning(root: Path, skipped: list[Path]) -> str:
    """The one warning line for on_bad_image='skip': how many files were left out, and which."""
    names = [str(p.relative_to(root)) for p in skipped]
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"warning: {root}: skipped {len(names)} unreadable image file(s): {', '.join(names[:SHOWN])}{more}"


def _check_classes_left(root: Path, classes: list[str], splits: dict[str, Samples]) -> None:
    """After skipping unreadable files every class (in every split) must still have an image."""
    for split, samples in splits.items():
        present = {lbl for _, lbl in samples}
        for label, name in enumerate(classes):
            if label not in present:
                folder = root / split / name if split in SPLIT_NAMES else root / name
                raise TochaError(f"{folder}: no readable image files left after skipping the unreadable ones")


def _stacked(splits: dict[str, Samples], arrays: dict[Path, np.ndarray]) -> dict[str, torch.Tensor]:
    """`<split>_images` uint8 (N, C, H, W) and `<split>_labels` int64 (N,) for each split."""
    out = {}
    for split, samples in splits.items():
        out[f"{split}_images"] = torch.from_numpy(np.stack([arrays[p] for p, _ in samples]))
        out[f"{split}_labels"] = torch.tensor([lbl for _, lbl in samples], dtype=torch.int64)
    return out


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
    *,
    split_seed: int = 0,
    name: str | None = None,
    on_bad_image: str = "fail",
    log: Callable[[str], None] = print,
    follow_symlinks: bool = False,
) -> LoadedData:
    """Load an image folder as a LoadedData; decoded tensors are cached by file fingerprints.

    Unreadable image files raise, all named (`on_bad_image="fail"`), or are left out with a warning
    through `log` ("skip"); a class left without a readable image is an error either way.

    (Long on purpose: scan, cache lookup, decode, the bad-file policy and the split are one pass
    over the same file list, each step a few lines, and it reads top to bottom.)"""
    if on_bad_image not in ON_BAD_IMAGE:
        raise TochaError(f"on_bad_image must be fail or skip, not {on_bad_image!r}")
    root = Path(root)
    classes, splits = scan_folder(root, follow_symlinks, log)
    paths = [p for s in splits.values() for p, _ in s]
    bad: list[UnreadableImage] = []  # files whose header already fails
    # With the format given no header is read: every file goes to the decoder.
    headers = read_headers(paths, bad, log) if image_size is None or mode is None else dict.fromkeys(paths)

    def fit(files: list[Path]) -> tuple[str, tuple[int, int]]:
        """The format given, completed from the headers of `files`."""
        if image_size is not None and mode is not None:
            return mode, tuple(image_size)
        found_mode, found_size = format_of([headers[p] for p in files])
        return mode or found_mode, tuple(image_size or found_size)

    first_format = fit(list(headers))
    (height, width), channels = first_format[1], 1 if first_format[0] == "L" else 3
    check_fits(len(paths) * channels * height * width, f"{len(paths)} images at {height}x{width}")
    listing = sorted((split, file_stamp(p), lbl) for split, s in splits.items() for p, lbl in s)
    # The split is drawn after unreadable files are left out, so its settings are part of the key.
    split_settings = (test_fraction, split_seed) if "all" in splits else None
    key = fingerprint(*first_format, listing, split_settings, on_bad_image, DECODE_VERSION)
    index = {p: i for i, p in enumerate(paths)}

    def build() -> dict[str, torch.Tensor]:
        arrays, more_bad = decode_all(list(headers), *first_format, log=log)
        unreadable = sorted(bad + more_bad, key=lambda e: index[e.path])
        if unreadable and on_bad_image == "fail":
            raise unreadable_error(root, unreadable)
        if more_bad and fit(list(arrays)) != first_format:
            # Files left out at decode had a say in the format (a cut RGB JPEG among gray PNGs, say).
            arrays, _ = decode_all(list(arrays), *fit(list(arrays)))
        kept = {split: [(p, lbl) for p, lbl in s if p in arrays] for split, s in splits.items()}
        _check_classes_left(root, classes, kept)
        if "all" in kept:  # no test/ folder: the test split is carved (a val/ folder stays as it is)
            kept = {**seeded_split(kept.pop("all"), test_fraction, split_seed), **kept}
        out = _stacked(kept, arrays)
        # Which files were left out, kept with the tensors so a cached load warns about them too.
        out["unreadable"] = torch.tensor([index[e.path] for e in unreadable], dtype=torch.int64)
        return out

    t = cached_tensors("folder", key, build)
    if len(t["unreadable"]):
        log(skipped_warning(root, [paths[i] for i in t["unreadable"].tolist()]))
    channels, height, width = t["train_images"].shape[1:]
    val = TensorSet(t["val_images"], t["val_labels"]) if "val_images" in t else None
    return LoadedData(
        name=name or root.resolve().name,
        classes=classes,
        train=TensorSet(t["train_images"], t["train_labels"]),
        test=TensorSet(t["test_images"], t["test_labels"]),
        source=f"image folder {root.resolve()}",
        details={"mode": "L" if channels == 1 else "RGB", "image_size": [height, width]},
        val=val,
        val_source=f"its {splits_folder(splits, root)} folder" if val is not None else "",
    )


def splits_folder(splits: dict[str, Samples], root: Path) -> str:
    """The validation folder's name (`val/` or `valid/`), from its first file."""
    first = splits["val"][0][0]
    return first.relative_to(root).parts[0] + "/"
