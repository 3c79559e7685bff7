"""`tocha data prepare TABLE.csv --target COLUMN --out DIR`: a table of any size read as a stream,
`CHUNK_ROWS` rows at a time, typed, split and encoded by the rules `tocha.data.table_set` applies
to a table read whole, and written as float32 rows into a prepared folder (`tocha.data.prepared`).

Memory stays bounded by the chunk, not the file: the text of one chunk at a time, plus a byte and
an int64 per row (which split a row is in, and where) and the labels. Four passes over the file:
1. survey: every column's cells counted (`CellKinds`: numeric or text by the one rule), the
   target's distinct values (its task and classes), the row count;
2. labels: each row's target through its task, and the rows kept (a target the task can read; no
   gap under `--fill drop-rows`); then the seeded test split and the validation carve, exactly
   as `load_table` splits the same rows;
3. the encoder fitted on the training rows alone (numeric fills: their mean; text: their
   categories);
4. every row encoded and written into its split's array.
The validation rows are carved here, before the encoder is fitted, so they teach it nothing (as
for a table read whole); training reads them as the prepared folder's own validation split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.array_files import bytes_to_take, check_room, open_array
from tocha.data.prepare_table_rows import DROPPED, TEST, TRAIN, VAL, fit_encoder, write_rows
from tocha.data.prepared import (
    FORMAT,
    LABELS_TMP,
    MANIFEST,
    PROGRESS,
    VERSION,
    arrays_in,
    clear_leftovers,
    clear_temporaries,
    file_digest,
    stamp_files,
)
from tocha.data.progress import stage
from tocha.data.splits import carve, carve_rule
from tocha.data.table import (
    CellKinds,
    RawTable,
    guess_task,
    is_missing,
    read_cells,
    rows_with_gaps,
    table_chunks,
)
from tocha.data.table_set import feature_columns, seeded_split, table_info
from tocha.errors import TochaError
from tocha.files import atomic_write_text, regular_file
from tocha.tasks import Task, make_task
from tocha.version import __version__

CHUNK_ROWS = 200_000  # rows parsed at a time: about 100 MB of text cells for a dozen columns
MAX_DISTINCT = 100_000  # a target's distinct values kept to choose its task and classes
Log = Callable[[str], None]


@dataclass
class TableOptions:
    """What `load_table` takes from the config, as prepared once."""

    target: str
    task: str = "auto"
    drop: list[str] = field(default_factory=list)
    fill: str | None = None
    decimal: str = "auto"
    test_fraction: float = 0.2
    split_seed: int = 0
    val_fraction: float = 0.1
    val_seed: int = 0


@dataclass
class Survey:
    """Pass 1: the table's shape, each column's cells counted, the target's distinct values."""

    rows: int = 0
    columns: list[str] = field(default_factory=list)
    decimal: str = "."
    kinds: dict[str, CellKinds] = field(default_factory=dict)
    distinct: set[str] = field(default_factory=set)  # the target's present cells, at most MAX_DISTINCT + 1


def prepare_table(source: str | Path, out: Path, options: TableOptions, log: Log = print,
                  *, chunk_rows: int = CHUNK_ROWS) -> Path:  # fmt: skip
    """Prepare the table file `source` into `out`. A prepare cut short is begun again from the
    start by the same command (its passes are minutes, not hours). Returns the manifest's path."""
    from tocha.locks import hold

    path = regular_file(source, "table").resolve()
    if options.fill == "median":
        raise TochaError("--fill median needs every training value of a column at once; a prepared table "
                         "is read a chunk at a time: use --fill mean or drop-rows")  # fmt: skip
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    with hold(out, "tocha data prepare"):
        start_over(out, path, options)
        try:
            manifest = prepared_manifest(path, out, options, log, chunk_rows=chunk_rows)
        except Exception:  # bad input, no room...: what this prepare wrote goes (the folder is as it was)
            for written in [*arrays_in(out), out / PROGRESS]:
                written.unlink(missing_ok=True)
            raise
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        (out / PROGRESS).unlink()
        stamp_files(out, manifest)  # just hashed: not hashed again at the first load
    return out / MANIFEST


def prepared_manifest(path: Path, out: Path, options: TableOptions, log: Log,
                      *, chunk_rows: int) -> dict[str, Any]:  # fmt: skip
    """The four passes (see the module), writing the arrays into `out`; the manifest they make."""
    chunks = lambda: table_chunks(path, options.decimal, chunk_rows)  # noqa: E731 (each pass reads anew)
    survey = survey_table(chunks(), options.target, log)
    if options.target not in survey.columns:
        listed = ", ".join(survey.columns)
        raise TochaError(f"{path}: no column {options.target!r}; its columns: {listed}")
    features = feature_columns(RawTable(path, survey.columns, {}), options.target, options.drop)
    numeric = [c for c in features if survey.kinds[c].decide(path, c)]
    gaps = {c: survey.rows - survey.kinds[c].present for c in numeric}
    if options.fill is None and (listed := ", ".join(f"{c} ({n})" for c, n in gaps.items() if n)):
        raise TochaError(f"{path}: missing values in {listed}; give --fill mean or drop-rows")
    task, classes = target_task(survey, path, options)
    labels, kept = read_labels(
        chunks(), survey, task, classes, features=features, out=out, options=options, log=log
    )
    split = assign_splits(kept, labels, task, classes, path=path, options=options)
    text = [c for c in features if c not in numeric]
    encoder = fit_encoder(chunks(), split, numeric, text, rows=survey.rows, log=log)
    counts = write_rows(chunks(), split, labels, encoder, out=out, log=log)
    del labels
    (out / LABELS_TMP).unlink()
    train_labels = np.load(out / "train_labels.npy", mmap_mode="r")
    from tocha.data.prepare import checksums

    return {
        "format": FORMAT,
        "version": VERSION,
        "tocha": __version__,
        "source": str(path),
        "source_kind": "table",
        "source_digest": file_digest(path),
        "classes": classes,
        "mode": "table",
        "image_size": [1, 1],
        "task": task.name,
        "target": options.target,
        "options": vars(options),
        "counts": counts,
        "split_rule": {"test_fraction": options.test_fraction, "split_seed": options.split_seed},
        "val_rule": carve_rule(options.val_fraction, options.val_seed, task.stratified)
        if options.val_fraction > 0
        else "",
        "table": table_info(
            encoder,
            options.target,
            task,
            options.fill,
            train_targets=np.asarray(train_labels),
            dropped=options.drop,
        ),
        "files": checksums(out, list(counts), log),
    }


def start_over(out: Path, path: Path, options: TableOptions) -> None:
    """`out` empty (or a cut-short prepare of this table with these options, begun again)."""
    key = {"source": str(path), "source_digest": file_digest(path), "options": vars(options)}
    if (out / MANIFEST).is_file():
        raise TochaError(f"{out} already holds a prepared dataset; prepare into another folder")
    if (out / PROGRESS).is_file():
        if json.loads((out / PROGRESS).read_text()).get("plan") != key:
            raise TochaError(f"{out} holds a prepare of another source or with other options (or the source "
                             "changed since it began); prepare into an empty folder")  # fmt: skip
        for written in arrays_in(out):  # begun again from the start: what it wrote goes first
            written.unlink()
        clear_temporaries(out)
    else:
        clear_leftovers(out)
    progress = {"format": FORMAT, "version": VERSION, "plan": key, "done": {}}
    atomic_write_text(out / PROGRESS, json.dumps(progress) + "\n")


def survey_table(chunks: Iterator[RawTable], target: str, log: Log) -> Survey:
    """Pass 1: every column's cells counted by the typing rule, and the target's distinct cells."""
    survey = Survey()
    with stage("reading the table", None, "row", log) as bar:
        for chunk in chunks:
            survey.columns, survey.decimal = chunk.columns, chunk.decimal
            for column in chunk.columns:
                _, kinds = read_cells(chunk.values[column], chunk.decimal)
                survey.kinds.setdefault(column, CellKinds()).add(kinds, survey.rows)
            if target in chunk.values and len(survey.distinct) <= MAX_DISTINCT:
                survey.distinct.update(c for c in chunk.values[target] if not is_missing(c))
            survey.rows += len(chunk)
            bar.advance(len(chunk))
    return survey


def target_task(survey: Survey, path: Path, options: TableOptions) -> tuple[Task, list[str]]:
    """The target's task (as asked, or guessed from its distinct values as `guess_task` guesses
    from all of them) and its classes, read by the task from the distinct values."""
    column = options.target
    numeric = survey.kinds[column].decide(path, column)
    cells = sorted(survey.distinct)
    numbers = read_cells(cells, survey.decimal)[0] if numeric else None
    if len(cells) > MAX_DISTINCT and not numeric:
        raise TochaError(f"{path}: the target {column!r} holds over {MAX_DISTINCT:,} different texts: an ID "
                         "or free text, not classes")  # fmt: skip
    name = options.task if options.task != "auto" else guess_task(cells, numbers, column)[0]
    task = make_task(name)
    return task, task.read_target(cells, numbers, column, str(path)).classes


def read_labels(chunks: Iterator[RawTable], survey: Survey, task: Task, classes: list[str],
                *, features: list[str], out: Path, options: TableOptions,
                log: Log) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Pass 2: every row's label through its task (in a temporary file beside the arrays), and which
    rows are kept: a target the task can read and, under `--fill drop-rows`, no gap. Without a
    fill, a missing target or number is an error naming the columns, as for a table read whole."""
    column = options.target
    numeric_target = survey.kinds[column].words == 0  # else text: `target_task` decided which
    kept = np.zeros(survey.rows, dtype=bool)
    labels: np.ndarray | None = None
    unusable_count, start = 0, 0
    with stage("reading the labels", survey.rows, "row", log) as bar:
        for chunk in chunks:
            cells = chunk.values[column]
            missing = np.array([is_missing(c) for c in cells], dtype=bool)
            usable = ~task.unusable_targets(cells, missing)
            unusable_count += int((~usable).sum())
            rows = np.flatnonzero(usable)
            if len(rows):
                picked = [cells[i] for i in rows]
                numbers = read_cells(picked, chunk.decimal)[0] if numeric_target else None
                values = task.read_labels(picked, numbers, column, str(chunk.path), classes=classes)
                if labels is None:
                    shape = (survey.rows, *values.shape[1:])
                    check_room(out, bytes_to_take({out / LABELS_TMP: (shape, values.dtype)}))
                    labels = open_array(out / LABELS_TMP, shape, values.dtype)
                labels[start + rows] = values
            if options.fill == "drop-rows":
                usable &= ~rows_with_gaps(chunk, features)
            kept[start : start + len(chunk)] = usable
            start += len(chunk)
            bar.advance(len(chunk))
    if unusable_count and options.fill is None:
        raise TochaError(f"{chunk.path}: the target {column!r} is missing in {unusable_count} rows; nobody "
                         "can fill a target: any --fill (drop-rows, mean) leaves those rows out")  # fmt: skip
    if unusable_count:
        log(f"{chunk.path.name}: left out {unusable_count} rows whose target {column!r} is missing")
    if options.fill == "drop-rows" and (dropped := survey.rows - unusable_count - int(kept.sum())):
        log(f"{chunk.path.name}: dropped {dropped} rows with missing values (--fill drop-rows)")
    assert labels is not None  # a target with no usable row has no classes: refused by its task
    return labels, kept


def assign_splits(kept: np.ndarray, labels: np.ndarray, task: Task, classes: list[str], *, path: Path,
                  options: TableOptions) -> np.ndarray:  # fmt: skip
    """Each row's split (`DROPPED`, `TRAIN`, `VAL`, `TEST`): the seeded test split of the kept rows
    and the validation carve of the training rows, as `load_table` makes them."""
    train_idx, test_idx = seeded_split(np.flatnonzero(kept), options.test_fraction, options.split_seed, path)
    split = np.full(len(kept), DROPPED, dtype=np.int8)
    split[test_idx] = TEST
    split[train_idx] = TRAIN
    if options.val_fraction > 0:
        inner, val_rows = carve(np.asarray(labels[train_idx]), options.val_fraction, options.val_seed,
                                task.stratified, where=str(path), names=classes)  # fmt: skip
        split[train_idx[val_rows]] = VAL
    return split
