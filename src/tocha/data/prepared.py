"""Prepared datasets: an image folder or a registered dataset decoded once into a folder of
memory-mappable NumPy `.npy` files (`tocha data prepare SOURCE --out DIR`), which `tocha train
--data DIR` and every other command read as a dataset.

Why `.npy`: fixed-size uint8 samples in one array per split are what training reads (a batch is a
slice of indices), `np.lib.format.open_memmap` writes them in place and reads them without loading
them, and NumPy is already a dependency; LitData, WebDataset and MosaicML streaming are made for
variable-size samples in shards fetched from object stores, which a local fixed-size image dataset
does not need.

The folder holds, per split (train, test, and val where the source has one): `<split>_images.npy`
uint8 (N, C, H, W) and `<split>_labels.npy` int64 (N,); and `manifest.json`, written last: the
format's name and version, the classes, the image mode and size, the split rule, the training
split's per-channel mean and std, the source and its digest, and each file's size and SHA-256. A
folder without its manifest is a prepare in progress (or cut short): it is refused with the command
that finishes it, and running that command continues where it stopped (`.progress.json` lists the
chunks written) to the same bytes an uninterrupted prepare writes; its arrays alone (no record of
which chunks are whole) are refused as an unfinished prepare, and that command prepares them anew.
Every manifest field and every array's header is checked before any array is read
(`prepared_check`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.prepared_check import SPLITS, array_problem, expected_arrays, manifest_problem
from tocha.data.progress import stage
from tocha.errors import TochaError
from tocha.files import TMP_PREFIX, atomic_write_text, file_sha256
from tocha.locks import LOCK_NAME

FORMAT, VERSION = "tocha-prepared", 1
MANIFEST, PROGRESS = "manifest.json", ".progress.json"
VERIFIED = ".verified.json"  # each file's size, time and inode when its SHA-256 was last found right
LABELS_TMP = "labels.tmp.npy"  # a table prepare's labels while its splits are made
Log = Callable[[str], None]


def is_prepared(path: str | Path) -> bool:
    """Whether `path` is a prepared dataset folder: finished, in progress, or its arrays without
    their manifest and no sub-folder (a prepare's folder that lost it, said as such rather than
    read as an image folder, whose images are in class sub-folders)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / MANIFEST).is_file() or (path / PROGRESS).is_file():
        return True
    return bool(arrays_in(path)) and not any(p.is_dir() for p in path.iterdir())


def arrays_in(path: Path) -> list[Path]:
    """The arrays a prepare writes that are in `path` (whatever their state)."""
    names = [f"{split}_{part}.npy" for split in SPLITS for part in ("images", "labels")]
    return [path / name for name in [*names, LABELS_TMP] if (path / name).is_file()]


def clear_temporaries(path: Path) -> None:
    """Remove the temporary files of writes a killed prepare left unfinished (`files.atomic_write`);
    under the folder's lock, nobody else is writing them."""
    for temporary in path.glob(TMP_PREFIX + "*"):
        temporary.unlink(missing_ok=True)


def clear_leftovers(path: Path) -> None:
    """Begin a prepare in `path`: empty, or holding only what a prepare leaves there (its arrays
    and their check record, without its manifest and progress: a prepare that lost them, whose
    arrays nobody can tell whole from half-written), which is removed. Anything else is refused."""
    clear_temporaries(path)
    own = {*(p.name for p in arrays_in(path)), VERIFIED, LOCK_NAME}
    if any(p.name not in own for p in path.iterdir()):
        raise TochaError(f"{path} is not empty and holds no prepared dataset; prepare into an empty folder")
    for leftover in [*arrays_in(path), path / VERIFIED]:
        leftover.unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a finished prepare, each field checked (`prepared_check`); a folder in
    progress is refused with the way on."""
    if not (path / MANIFEST).is_file():
        if not (path / PROGRESS).is_file():  # its arrays alone: nothing says which chunks are whole
            raise TochaError(
                f"{path}: an unfinished prepare (its arrays but no {MANIFEST}); run the "
                f"`tocha data prepare SOURCE --out {path}` command again: it prepares them "
                "anew"
            )
        raise TochaError(
            f"{path}: a prepare that has not finished (no {MANIFEST}); run the same "
            "`tocha data prepare ... --out` command again to finish it"
        )
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TochaError(f"{path / MANIFEST}: not readable ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TochaError(f"{path / MANIFEST}: not a tocha prepared dataset's manifest")
    if manifest.get("version") != VERSION:
        raise TochaError(
            f"{path}: prepared in format version {manifest.get('version')}, this tocha reads "
            f"version {VERSION}; prepare it again"
        )
    if problem := manifest_problem(manifest):
        raise TochaError(f"{path}: {MANIFEST}: {problem}; prepare it again")
    return manifest


def check_arrays(path: Path, manifest: dict[str, Any]) -> None:
    """Every array's header is what the manifest says it holds, before any array is loaded (one
    line for the first that is not); see `prepared_check`."""
    for name, (dtype, shape) in expected_arrays(manifest).items():
        if problem := array_problem(path / name, dtype, shape):
            raise TochaError(f"{path}: {name} {problem}; prepare it again")


def check_files(path: Path, manifest: dict[str, Any], log: Log, full: bool = False) -> None:
    """Every file the manifest lists is there with its size and SHA-256 (one line for the first
    that is not). A file whose size, modification time and inode are those it had when its SHA-256
    was last found right (`VERIFIED`) is not read again: a 190 GB folder is not hashed at every
    run. `full` (`tocha data verify`) reads every file whatever the record says."""
    stamps = read_stamps(path)
    fresh = {}
    with stage("checking the prepared files", len(manifest["files"]), "file", log) as progress:
        for name, record in manifest["files"].items():
            progress.advance()  # said once checking has taken a second (large arrays)
            file = path / name
            if not file.is_file():
                raise TochaError(f"{path}: {name} is missing; prepare the dataset again")
            st = file.stat()
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino, record["sha256"]]
            if st.st_size != record["bytes"] or (
                (full or stamps.get(name) != stamp) and file_sha256(file) != record["sha256"]
            ):
                raise TochaError(
                    f"{path}: {name} is damaged (its SHA-256 is not the one recorded); prepare "
                    "the dataset again"
                )
            fresh[name] = stamp
    if fresh != stamps:
        write_stamps(path, fresh)


def stamp_files(path: Path, manifest: dict[str, Any]) -> None:
    """Record the files as found right now (a prepare has just hashed them into `manifest`)."""
    stamps = {}
    for name, record in manifest["files"].items():
        st = (path / name).stat()
        stamps[name] = [st.st_size, st.st_mtime_ns, st.st_ino, record["sha256"]]
    write_stamps(path, stamps)


def read_stamps(path: Path) -> dict[str, Any]:
    """The files' stamps when they were last found right (`check_files`); none when unreadable."""
    try:
        stamps = json.loads((path / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def write_stamps(path: Path, stamps: dict[str, Any]) -> None:
    """Record the stamps; a folder that cannot be written (read-only) is simply checked again."""
    try:
        atomic_write_text(path / VERIFIED, json.dumps(stamps) + "\n")
    except OSError:
        pass


def check_source(path: Path, manifest: dict[str, Any]) -> None:
    """A folder or table source that is still there must be as it was prepared (else the prepared
    samples are not the source's any more: say so rather than train on a stale copy)."""
    source = Path(manifest["source"])
    if manifest.get("source_kind") == "table" and source.is_file():
        if file_digest(source) != manifest["source_digest"]:
            raise TochaError(f"{path}: its source {source} changed since it was prepared; prepare it again")
    if manifest.get("source_kind") != "folder" or not source.is_dir():
        return
    from tocha.data.folder import scan_folder

    _, splits = scan_folder(source, log=lambda _line: None)
    if folder_digest(source, [p for s in splits.values() for p, _ in s]) != manifest["source_digest"]:
        raise TochaError(f"{path}: its source {source} changed since it was prepared; prepare it again")


def file_digest(path: Path) -> str:
    """A table file as it was: its size and modification time (a later change is refused)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def folder_digest(root: Path, paths: list[Path]) -> str:
    """The source as it was: each file's name under `root`, size and modification time."""
    from tocha.data.cache import fingerprint

    listing = []
    for p in paths:
        st = p.stat()
        listing.append(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return fingerprint(sorted(listing))


def load_prepared(
    path: str | Path, image_size: tuple[int, int] | None = None, log: Log = print, in_memory: str = "yes"
) -> Any:
    """The prepared folder as a LoadedData: its test (and validation) arrays read into memory, its
    training images too (`in_memory` yes), or kept on disk and read a batch at a time (no), or
    whichever fits (auto: in memory when they take under half the memory available)."""
    import torch

    from tocha.data.disk_images import DiskImages
    from tocha.data.tensorset import LoadedData, TensorSet
    from tocha.memory import available_bytes

    path = Path(path).expanduser()
    manifest = read_manifest(path)
    table = manifest.get("table")  # a prepared table: float32 rows (N, F, 1, 1), their encoding
    if image_size and list(image_size) != manifest["image_size"]:
        raise TochaError(
            f"{path} was prepared at {manifest['image_size'][0]}x{manifest['image_size'][1]}; "
            "--image-size cannot change it (prepare it again at that size)"
        )
    check_files(path, manifest, log)
    check_arrays(path, manifest)  # a folder's hashes can match what it holds: its headers checked alone
    check_source(path, manifest)

    train_bytes = manifest["files"]["train_images.npy"]["bytes"]
    on_disk = in_memory == "no" or (in_memory == "auto" and train_bytes > available_bytes() // 2)

    def split(name: str) -> Any:
        if f"{name}_images.npy" not in manifest["files"]:
            return None
        file = path / f"{name}_images.npy"
        digest = manifest["files"][file.name]["sha256"]
        on_file = on_disk and name == "train"  # test and validation are scored whole: in memory
        images = DiskImages(file, sha256=digest) if on_file else torch.from_numpy(np.load(file))
        return TensorSet(images, torch.from_numpy(np.load(path / f"{name}_labels.npy")))

    val = split("val")
    samples = "rows" if table else "images"
    details = {"features": table["features"]} if table else {"mode": manifest["mode"]}
    return LoadedData(
        name=path.name,
        classes=list(manifest["classes"]),
        train=split("train"),
        test=split("test"),
        source=f"prepared {path.resolve()} (from {manifest['source']}; training {samples} "
        f"{'read from disk a batch at a time' if on_disk else 'in memory'})",
        details={**details, "image_size": list(manifest["image_size"]), "prepared": True},
        task=manifest.get("task", "classification"),
        table=table,
        val=val,
        val_source=(f"{manifest['val_rule']}, as prepared" if table else "its val/ folder, as prepared")
        if val is not None
        else "",
    )
