"""`tocha data prepare`: an image folder, a registered dataset or your own data's file
(`data.prepare_given`) decoded once, on every core, into a prepared folder (`tocha.data.prepared`
says what it holds and reads it). A prepare cut short goes on where it stopped when the same command
runs again, to the bytes an uninterrupted one writes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.array_files import bytes_to_take, check_room, open_array
from tocha.data.images import load_image
from tocha.data.prepared import (
    FORMAT,
    MANIFEST,
    PROGRESS,
    VERSION,
    clear_leftovers,
    clear_temporaries,
    folder_digest,
    is_prepared,
    stamp_files,
)
from tocha.data.progress import stage
from tocha.data.workers import decoding_pool
from tocha.errors import TochaError
from tocha.files import atomic_write_text, file_sha256
from tocha.version import __version__

CHUNK = 1024  # images decoded per task, and per progress record (recorded: a prepare goes on in its own)
Log = Callable[[str], None]


def prepare(source: str, out: Path, *, image_size: tuple[int, int] | None = None, data_dir: str | None = None,
            test_fraction: float = 0.2, split_seed: int = 0, on_bad_image: str = "fail",
            workers: int | None = None, log: Log = print, after_chunk: Callable[[int], None] | None = None,
            data_args: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Decode `source` (a registered dataset's name or an image folder's path) into `out`, or go on
    with a prepare of the same source that was cut short there. `after_chunk(n)`: called after each
    chunk is on disk (how a test cuts a prepare short). Returns the manifest's path."""
    from tocha.locks import hold

    out = Path(out).expanduser()
    plan = make_plan(
        source,
        out,
        image_size,
        data_dir,
        test_fraction=test_fraction,
        split_seed=split_seed,
        on_bad_image=on_bad_image,
        log=log,
        data_args=data_args,
    )
    out.mkdir(parents=True, exist_ok=True)
    with hold(out, "tocha data prepare"):
        if (out / MANIFEST).is_file():
            raise TochaError(f"{out} already holds a prepared dataset; prepare into another folder")
        progress = read_progress(out, plan)
        arrays = array_shapes(plan, out)
        check_room(out, bytes_to_take(arrays))  # before a byte is taken, the progress record included
        made, begun = [path for path in arrays if not path.is_file()], not (out / PROGRESS).is_file()
        forget(progress, made)  # a split with an array missing is written again, whatever its record says
        atomic_write_text(out / PROGRESS, json.dumps(progress) + "\n")
        try:
            write_arrays(
                plan, out, progress, workers or os.cpu_count() or 1, log=log, after_chunk=after_chunk
            )
        except Exception:  # an error, not a stop (Ctrl-C keeps what is written, to go on from)
            give_back(out, made, progress, begun)
            raise
        manifest = make_manifest(plan, out, log)
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        (out / PROGRESS).unlink()
        stamp_files(out, manifest)  # just hashed: not hashed again at the first load
    return out / MANIFEST


def make_plan(source: str, out: Path, image_size: tuple[int, int] | None, data_dir: str | None,
              *, test_fraction: float, split_seed: int, on_bad_image: str,
              log: Log, data_args: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """What will be written, decided before anything is: the classes, each split's files (or, for
    a registered dataset, its decoded arrays; for your own data's file, its items), the mode and
    size, the source's digest."""
    from tocha.data.code import is_data_code
    from tocha.data.registry import DATASETS

    if is_data_code(source):
        from tocha.data.prepare_given import given_plan

        if image_size:
            raise TochaError(f"{source} gives its images at their size; --image-size is for folders")
        return given_plan(source, data_args, test_fraction=test_fraction, split_seed=split_seed, log=log)
    if data_args:
        raise TochaError(f"--data-arg is for your own data's file (FILE.py:NAME), not {source}")
    if source in DATASETS:
        return registered_plan(source, data_dir, image_size, log)
    root = Path(source).expanduser()
    if not root.is_dir():
        raise TochaError(f"{source}: not a registered dataset nor an image folder")
    if is_prepared(root):
        raise TochaError(f"{source} is a prepared dataset already; train on it with --data {source}")
    if out.resolve().is_relative_to(root.resolve()):
        raise TochaError(f"--out {out} is inside the source {root}: its files would become part of what "
                         "is prepared; choose a folder outside it")  # fmt: skip
    return folder_plan(root, image_size, test_fraction, split_seed, on_bad_image=on_bad_image, log=log)


def folder_plan(root: Path, image_size: tuple[int, int] | None, test_fraction: float, split_seed: int,
                *, on_bad_image: str, log: Log) -> dict[str, Any]:  # fmt: skip
    """The split and format `load_folder` would use, from the folder's listing and headers."""
    from tocha.data.folder import format_of, read_headers, scan_folder, seeded_split, unreadable_error
    from tocha.data.images import UnreadableImage

    classes, splits = scan_folder(root, log=log)
    bad: list[UnreadableImage] = []
    headers = read_headers([p for s in splits.values() for p, _ in s], bad, log)
    if bad and on_bad_image != "skip":
        raise unreadable_error(root, bad)
    if bad:
        log(f"warning: {root}: left out {len(bad)} unreadable image file(s)")
    kept = {split: [(p, label) for p, label in s if p in headers] for split, s in splits.items()}
    if "all" in kept:  # no test/ folder: carved as training carves it
        kept = {**seeded_split(kept.pop("all"), test_fraction, split_seed), **kept}
    mode, size = format_of(list(headers.values()))
    size = tuple(image_size) if image_size else size
    return {
        "kind": "folder",
        "source": str(root.resolve()),
        "source_digest": folder_digest(root, [p for s in splits.values() for p, _ in s]),
        "classes": classes,
        "mode": mode,
        "size": list(size),
        "split_rule": {"test_fraction": test_fraction, "split_seed": split_seed} if "all" in splits else None,
        "files": {split: [(str(p), label) for p, label in samples] for split, samples in kept.items()},
    }


def registered_plan(name: str, data_dir: str | None, image_size: tuple[int, int] | None,
                    log: Log) -> dict[str, Any]:  # fmt: skip
    """A registered dataset: decoded as training decodes it (its checksummed files), then written."""
    from tocha.data.load import load_registered
    from tocha.data.registry import DATASETS

    if image_size:
        raise TochaError(
            f"{name} has one size, {DATASETS[name].image_shape[1:]}; --image-size is for folders"
        )
    data = load_registered(name, data_dir, log=log)
    spec = DATASETS[name]
    return {
        "kind": "registered",
        "source": name,
        "source_digest": hashlib.sha256(json.dumps([f.md5 for f in spec.files]).encode()).hexdigest(),
        "classes": data.classes,
        "mode": "L" if data.image_shape[0] == 1 else "RGB",
        "size": list(data.image_shape[1:]),
        "split_rule": None,
        "arrays": {
            "train": (data.train.images.numpy(), data.train.labels.numpy()),
            "test": (data.test.images.numpy(), data.test.labels.numpy()),
        },
    }


def splits_of(plan: dict[str, Any]) -> dict[str, int]:
    """Each split's number of images, in the order they are written."""
    if "arrays" in plan:  # a registered dataset, decoded already
        return {split: len(arrays[1]) for split, arrays in plan["arrays"].items()}
    if "given" in plan:  # your own data's items, by index
        return {split: len(chosen) for split, (_, chosen, _) in plan["given"].items()}
    return {split: len(files) for split, files in plan["files"].items()}


def read_progress(out: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """The chunks already written for this very plan; a folder in progress for another source,
    split or size is refused rather than mixed."""
    key = {k: plan[k] for k in ("source", "source_digest", "classes", "mode", "size", "split_rule")}
    key["counts"] = splits_of(plan)
    path = out / PROGRESS
    if path.is_file():
        clear_temporaries(out)  # a write the kill cut short: its record is the one before
        progress = json.loads(path.read_text())
        if progress.get("plan") != key:
            raise TochaError(f"{out} holds a prepare of another source or with other options (or the source "
                             f"changed since it began); prepare into an empty folder")  # fmt: skip
        return progress
    clear_leftovers(out)
    return {"format": FORMAT, "version": VERSION, "plan": key, "chunk": CHUNK, "done": {}}


def array_shapes(plan: dict[str, Any], out: Path) -> dict[Path, tuple[tuple[int, ...], Any]]:
    """Each array file the plan writes, with its shape and dtype."""
    channels = 1 if plan["mode"] == "L" else 3
    height, width = plan["size"]
    arrays: dict[Path, tuple[tuple[int, ...], Any]] = {}
    for split, count in splits_of(plan).items():
        arrays[out / f"{split}_images.npy"] = ((count, channels, height, width), np.uint8)
        arrays[out / f"{split}_labels.npy"] = ((count,), np.int64)
    return arrays


def give_back(out: Path, made: list[Path], progress: dict[str, Any], begun: bool) -> None:
    """After an error: the arrays this run made are removed (their room given back), with their
    chunks' records; a prepare begun by this run leaves no record either. The arrays an earlier
    run made are kept, to go on from."""
    for path in made:
        path.unlink(missing_ok=True)
    if begun:
        (out / PROGRESS).unlink(missing_ok=True)
        return
    forget(progress, made)
    atomic_write_text(out / PROGRESS, json.dumps(progress) + "\n")


def forget(progress: dict[str, Any], arrays: list[Path]) -> None:
    """Drop the chunk records of the splits these arrays belong to."""
    splits = {path.name.rsplit("_", 1)[0] for path in arrays}  # train_images.npy -> train
    progress["done"] = {split: starts for split, starts in progress["done"].items() if split not in splits}


def write_arrays(plan: dict[str, Any], out: Path, progress: dict[str, Any], workers: int, *, log: Log,
                 after_chunk: Callable[[int], None] | None) -> None:  # fmt: skip
    """Each split's images and labels, chunk by chunk into memory-mapped `.npy` files; a chunk is
    recorded done only once it is flushed, so a cut-short prepare redoes at most one chunk per
    worker."""
    arrays = array_shapes(plan, out)
    size = progress.get("chunk", 1024)  # the chunks it began with (1,024 before they were recorded)
    written = 0
    with decoding_pool(workers) as pool:
        for split, count in splits_of(plan).items():
            images = labels = None
            try:
                images = open_array(out / f"{split}_images.npy", *arrays[out / f"{split}_images.npy"])
                labels = open_array(out / f"{split}_labels.npy", *arrays[out / f"{split}_labels.npy"])
                done = set(progress["done"].get(split, []))
                todo = [start for start in range(0, count, size) if start not in done]
                with stage(f"preparing {split}", count, "image", log) as bar:
                    bar.advance(count - sum(min(size, count - s) for s in todo))
                    for start, chunk_images, chunk_labels in chunks(plan, split, todo, size, pool=pool):
                        images[start : start + len(chunk_labels)] = chunk_images
                        labels[start : start + len(chunk_labels)] = chunk_labels
                        images.flush()
                        labels.flush()
                        progress["done"].setdefault(split, []).append(start)
                        atomic_write_text(out / PROGRESS, json.dumps(progress) + "\n")
                        bar.advance(len(chunk_labels))
                        written += 1
                        if after_chunk is not None:
                            after_chunk(written)
            finally:
                del images, labels  # closes the maps, on an error too (a removed file mapped keeps its room)


def chunks(plan: dict[str, Any], split: str, starts: list[int], size: int, *, pool: Executor) -> Any:
    """(start, images, labels) of each chunk of `size`, in order: a registered dataset's from its
    arrays, a folder's decoded by the pool's processes."""
    if plan["kind"] == "registered":
        images, labels = plan["arrays"][split]
        for start in starts:
            yield start, images[start : start + size], labels[start : start + size]
        return
    if plan["kind"] == "given":  # your own data's items, read here (its dataset is not sent to a process)
        from tocha.data.prepare_given import given_chunks

        yield from given_chunks(plan, split, starts, size)
        return
    files = plan["files"][split]
    jobs = [(start, files[start : start + size]) for start in starts]
    args = [([path for path, _ in part], plan["mode"], tuple(plan["size"])) for _, part in jobs]
    for (start, part), decoded in zip(jobs, pool.map(decode_chunk, args), strict=True):
        yield start, decoded, np.array([label for _, label in part], dtype=np.int64)


def decode_chunk(job: tuple[list[str], str, tuple[int, int]]) -> np.ndarray:
    """One chunk's images, decoded as training decodes them (in a worker process)."""
    paths, mode, size = job
    return np.stack([load_image(Path(p), mode, size) for p in paths])


def make_manifest(plan: dict[str, Any], out: Path, log: Log) -> dict[str, Any]:
    """What the folder holds, with each file's size and SHA-256 and the training split's mean and std."""
    from tocha.data.disk_images import DiskImages
    from tocha.data.normalize import channel_stats

    mean, std = channel_stats(
        DiskImages(out / "train_images.npy")
    )  # as training computes them, chunk by chunk
    files = checksums(out, list(splits_of(plan)), log)
    return {
        "format": FORMAT,
        "version": VERSION,
        "tocha": __version__,
        "source": plan["source"],
        "source_kind": plan["kind"],
        "source_digest": plan["source_digest"],
        "classes": plan["classes"],
        "mode": plan["mode"],
        "image_size": plan["size"],
        "split_rule": plan["split_rule"],
        "counts": splits_of(plan),
        "mean": mean,
        "std": std,
        "files": files,
    }


def checksums(out: Path, splits: list[str], log: Log) -> dict[str, dict[str, Any]]:
    """Each split's array files' size and SHA-256, for the manifest."""
    files = {}
    with stage("checksumming", 2 * len(splits), "file", log) as progress:
        for split in splits:
            for part in ("images", "labels"):
                progress.advance()  # said once checksumming has taken a second (large arrays)
                path = out / f"{split}_{part}.npy"
                files[path.name] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    return files
