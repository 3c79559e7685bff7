"""Passes 3 and 4 of a streamed table prepare (`data.prepare_table`): the encoder fitted on the
training rows alone, then every kept row encoded and written into its split's arrays, one chunk
at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.array_files import bytes_to_take, check_room, open_array
from tocha.data.progress import stage
from tocha.data.table import RawTable, read_cells
from tocha.data.table_encoder import MAX_CATEGORIES, TableEncoder
from tocha.errors import TochaError

DROPPED, TRAIN, VAL, TEST = -1, 0, 1, 2  # a row's split
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}
Log = Callable[[str], None]


def fit_encoder(
    chunks: Iterator[RawTable], split: np.ndarray, numeric: list[str], text: list[str], *, rows: int, log: Log
) -> TableEncoder:
    """Pass 3: the encoder `TableEncoder.fit` makes, from the training rows alone: a numeric
    column's fill is its mean there, a text column's categories are those seen there."""
    sums = dict.fromkeys(numeric, 0.0)
    counts = dict.fromkeys(numeric, 0)
    seen: dict[str, set[str]] = {c: set() for c in text}
    start = 0
    with stage("fitting the encoding", rows, "row", log) as bar:
        for chunk in chunks:
            train = np.flatnonzero(split[start : start + len(chunk)] == TRAIN)
            for column in numeric:
                numbers = read_cells(chunk.values[column], chunk.decimal)[0][train]
                present = numbers[~np.isnan(numbers)]
                sums[column] += float(present.sum())
                counts[column] += len(present)
            for column in text:
                cells = chunk.values[column]
                seen[column].update(cells[i] for i in train)
                if len(seen[column]) > MAX_CATEGORIES + 1:
                    break
            start += len(chunk)
            bar.advance(len(chunk))
    categories = {}
    for column in text:
        found = sorted(seen[column] - {""})
        if len(found) > MAX_CATEGORIES:
            raise TochaError(f"{chunk.path}: column {column!r} holds over {MAX_CATEGORIES:,} different "
                             "texts, the most a one-hot column may have: an ID or free text? Leave it out "
                             f"with --drop {column}")  # fmt: skip
        categories[column] = found
    fill = {c: sums[c] / counts[c] if counts[c] else 0.0 for c in numeric}
    return TableEncoder(numeric=numeric, categories=categories, fill=fill)


def write_rows(
    chunks: Iterator[RawTable],
    split: np.ndarray,
    labels: np.ndarray,
    encoder: TableEncoder,
    *,
    out: Path,
    log: Log,
) -> dict[str, int]:
    """Pass 4: every kept row encoded and written, in file order, into its split's arrays
    (`<split>_images.npy`: float32 (N, F, 1, 1), one feature per channel, as `rows_set` holds a
    table; `<split>_labels.npy`)."""
    counts = {name: int((split == code).sum()) for name, code in SPLITS.items()}
    counts = {name: n for name, n in counts.items() if n or name != "val"}
    width = len(encoder.feature_names)
    files: dict[Path, tuple[tuple[int, ...], Any]] = {}
    for name, n in counts.items():
        files[out / f"{name}_images.npy"] = ((n, width, 1, 1), np.float32)
        files[out / f"{name}_labels.npy"] = ((n, *labels.shape[1:]), labels.dtype)
    check_room(out, bytes_to_take(files))  # every array's room before any is taken
    arrays = {name: tuple(open_array(out / f"{name}_{part}.npy", *files[out / f"{name}_{part}.npy"])
                          for part in ("images", "labels")) for name in counts}  # fmt: skip
    filled = dict.fromkeys(counts, 0)
    start, unseen = 0, 0
    with stage("writing the rows", len(split), "row", log) as bar:
        for chunk in chunks:
            x, _ = encoder.transform(chunk)
            part = split[start : start + len(chunk)]
            for name, (images, split_labels) in arrays.items():
                rows = np.flatnonzero(part == SPLITS[name])
                at = filled[name]
                images[at : at + len(rows), :, 0, 0] = x[rows]
                split_labels[at : at + len(rows)] = labels[start + rows]
                filled[name] += len(rows)
                if name == "test":
                    unseen += encoder.count_unseen(x[rows])
            start += len(chunk)
            bar.advance(len(chunk))
    for images, split_labels in arrays.values():
        images.flush()
        split_labels.flush()
    if unseen:
        log(f"{chunk.path.name}: {unseen} test values of text columns have categories not seen in training: "
            "their one-hot blocks are all zeros")  # fmt: skip
    return counts
