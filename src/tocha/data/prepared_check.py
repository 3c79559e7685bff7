"""A prepared folder checked before any of it is used: every manifest field a reader relies on, and
every array's `.npy` header (dtype, shape, order, length), read without loading the array.

The manifest records each file's SHA-256, which catches a file damaged after it was written
(`prepared.check_files`); it says nothing about a folder written by hand or by another program,
whose hashes match what it holds. So what it holds is checked on its own: uint8 images
(N, C, H, W) or a table's float32 rows (N, F, 1, 1), labels (N,) of the task's type, as many as
the manifest counts, in C order, and files as long as their headers say. An object array is never
loaded (NumPy would unpickle it): its header is enough to refuse it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tocha.config_fields import MAX_SIDE
from tocha.data.table_record import table_problem

SPLITS = ("train", "val", "test")
CHANNELS = {"L": 1, "RGB": 3, "table": None}  # a table's channels are its features
LABELS = {"classification": np.int64, "regression": np.float32}  # the labels each task's prepare writes
SHA256 = re.compile(r"[0-9a-f]{64}")


def shown(value: Any) -> str:
    """A field's value as the manifest spells it, cut short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def is_int(value: Any, low: int, high: float = math.inf) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's fields (one phrase, naming the field), or None."""
    mode, task = manifest.get("mode"), manifest.get("task", "classification")
    channels = CHANNELS.get(mode) if isinstance(mode, str) else None
    tasks = f"a task tocha prepares ({', '.join(LABELS)})"
    required: list[tuple[str, Callable[[Any], bool], str]] = [
        ("classes", names_ok, "a list of distinct class names"),
        ("mode", lambda v: isinstance(v, str) and v in CHANNELS, f"one of {', '.join(CHANNELS)}"),
        ("image_size", lambda v: size_ok(v, mode), f"a height and width of 1 to {MAX_SIDE} (a table: 1, 1)"),
        ("counts", counts_ok, "each split's sample count (train, test, and val where there is one)"),
        ("files", lambda v: files_ok(v, manifest["counts"]), "each split's images and labels, with their "
         "size and SHA-256"),
        ("source", lambda v: isinstance(v, str), "the source's name"),
        ("source_kind", lambda v: isinstance(v, str), "the kind of source"),
        ("source_digest", lambda v: isinstance(v, str), "the source's digest"),
        ("split_rule", lambda v: v is None or isinstance(v, dict), "the split's rule, or null"),
    ]  # fmt: skip
    if mode == "table":
        required += [("task", task_ok, tasks),
                     ("table", lambda v: record_ok(v, task), "the table's record (target, task, encoder, "
                      "features)")]  # fmt: skip
    else:
        required += [("mean", lambda v: stats_ok(v, channels), f"{channels} finite number(s), one a channel"),
                     ("std", lambda v: stats_ok(v, channels) and min(v) >= 0,
                      f"{channels} finite number(s) of 0 or more")]  # fmt: skip
    optional: list[tuple[str, Callable[[Any], bool], str]] = [
        ("task", task_ok, tasks),
        ("options", lambda v: isinstance(v, dict), "the prepare's options"),
        ("target", lambda v: isinstance(v, str), "the target column's name"),
        ("val_rule", lambda v: isinstance(v, str), "the validation carve's rule"),
    ]
    for key, ok, wanted in required:
        if key not in manifest:
            return f"{json.dumps(key)} is missing ({wanted})"
        if not ok(manifest[key]):
            return f"{json.dumps(key)} is {shown(manifest[key])}, not {wanted}"
    for key, ok, wanted in optional:
        if key in manifest and not ok(manifest[key]):
            return f"{json.dumps(key)} is {shown(manifest[key])}, not {wanted}"
    return None


def task_ok(task: Any) -> bool:
    return isinstance(task, str) and task in LABELS


def names_ok(names: Any) -> bool:
    return (isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names))  # fmt: skip


def size_ok(size: Any, mode: Any) -> bool:
    """Two sides of 1 to MAX_SIDE; a table's rows are (F, 1, 1)."""
    return (isinstance(size, list) and len(size) == 2 and all(is_int(side, 1, MAX_SIDE) for side in size)
            and (mode != "table" or size == [1, 1]))  # fmt: skip


def stats_ok(values: Any, channels: int | None) -> bool:
    """One finite number a channel."""
    return isinstance(values, list) and len(values) == channels and all(is_number(v) for v in values)


def record_ok(table: Any, task: Any) -> bool:
    """A table's record as tocha writes it (`table_record`), of the manifest's task."""
    features = table.get("features") if isinstance(table, dict) else None
    return (isinstance(features, list) and table_problem(table, len(features)) is None
            and table.get("task") == task)  # fmt: skip


def counts_ok(counts: Any) -> bool:
    """train and test (val optional), each a count; at least one training sample."""
    return (isinstance(counts, dict) and {"train", "test"} <= counts.keys() <= set(SPLITS)
            and all(is_int(n, 0) for n in counts.values()) and counts["train"] >= 1)  # fmt: skip


def files_ok(files: Any, counts: Any) -> bool:
    """Exactly the arrays of the counted splits (plain names, nothing outside the folder), each with
    its size and SHA-256."""
    if not (isinstance(files, dict) and counts_ok(counts)):
        return False
    names = {f"{split}_{part}.npy" for split in counts for part in ("images", "labels")}
    return files.keys() == names and all(
        isinstance(r, dict) and is_int(r.get("bytes"), 0) and isinstance(r.get("sha256"), str)
        and SHA256.fullmatch(r["sha256"]) is not None for r in files.values()
    )  # fmt: skip


def expected_arrays(manifest: dict[str, Any]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Each array file's name and the dtype and shape it must have (from a checked manifest)."""
    table = manifest["mode"] == "table"
    channels = len(manifest["table"]["features"]) if table else CHANNELS[manifest["mode"]]
    labels = np.dtype(LABELS[manifest.get("task", "classification")])
    arrays = {}
    for split, count in manifest["counts"].items():
        arrays[f"{split}_images.npy"] = (np.dtype(np.float32 if table else np.uint8),
                                         (count, channels, *manifest["image_size"]))  # fmt: skip
        arrays[f"{split}_labels.npy"] = (labels, (count,))
    return arrays


def array_header(file: Path) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """A `.npy` file's dtype, shape, Fortran order and where its data begins, read from its header
    alone (nothing is loaded, nothing unpickled). ValueError when it is not a `.npy` header."""
    with file.open("rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]}, where tocha writes 1.0")
        return dtype, tuple(shape), bool(fortran), f.tell()


def array_problem(file: Path, dtype: np.dtype, shape: tuple[int, ...]) -> str | None:
    """What makes `file` other than a C-order array of `dtype` and `shape` (one phrase), or None."""
    try:
        found, found_shape, fortran, offset = array_header(file)
    except (ValueError, TypeError, SyntaxError) as e:
        return f"is not a NumPy array file ({e})"
    if found != dtype or found_shape != shape:
        return f"holds {found} {found_shape} where {dtype} {shape} belongs"
    if fortran:
        return "is in Fortran order, not the C order tocha writes"
    needed = offset + math.prod(shape) * dtype.itemsize
    if (size := file.stat().st_size) != needed:
        return f"is {size:,} bytes where its header says {needed:,}"
    return None
