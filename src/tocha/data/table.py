"""CSV / TSV tables -> columns a model can take: the reader and the feature encoding.

The file is parsed as a stream (Python's csv module: quoted fields, embedded commas, a BOM, `.gz`)
with its separator detected from the header (comma, semicolon or tab). Every problem is one error
that says where: a missing target (with the columns there are), an empty file, a ragged row (its
line), a value that is not a number in a numeric column (its row and column), missing values (the
columns and counts, unless a fill is asked for), a file too big to hold. What the target column
means is its task's to say (`tocha.tasks`: `read_target`, which refuses a constant target or a
single class); this module hands it the column's cells and numbers. Numeric columns are
standardised and text columns one-hot encoded with statistics and categories of the training rows
only (`TableEncoder`); a category never seen in training becomes an all-zero row of its one-hot
block, and is counted.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tocha.errors import TochaError
from tocha.tasks import ClassificationTask, RegressionTask, Target, make_task

MAX_BYTES = 512 << 20  # a table over this is refused before it is read: sample it first
MAX_ROWS = 2_000_000
MISSING = {"", "na", "nan", "null", "none", "?"}
FILLS = ("mean", "median", "drop-rows")
MAX_CLASSES_FOR_INTEGERS = 20  # an integer target with at most this many values is classification


@dataclass
class RawTable:
    """The parsed file: every column's values as text, in file order."""

    path: Path
    columns: list[str]
    values: dict[str, list[str]]

    def __len__(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0


def open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")  # utf-8-sig: a BOM is dropped


def separator(path: Path, header: str) -> str:
    if ".tsv" in path.suffixes:
        return "\t"
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.get)  # type: ignore[arg-type]
    if counts[best] == 0:
        raise TochaError(f"{path}: the header has no comma, semicolon or tab: one column is not a table")
    return best


def read_table(path: str | Path) -> RawTable:
    """Parse a CSV / TSV (optionally .gz) with a header row."""
    path = Path(path)
    if not path.is_file():
        raise TochaError(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise TochaError(f"{path}: {path.stat().st_size:,} bytes is over the {MAX_BYTES:,} a table may have; "
                         "sample its rows into a smaller file first")  # fmt: skip
    with open_text(path) as f:
        header = f.readline()
        if not header.strip():
            raise TochaError(f"{path}: empty file (no header row)")
        sep = separator(path, header)
        columns = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
        if len(set(columns)) != len(columns):
            twice = sorted({c for c in columns if columns.count(c) > 1})
            raise TochaError(f"{path}: column names appear twice: {', '.join(twice)}")
        values: dict[str, list[str]] = {c: [] for c in columns}
        for line, row in rows(f, sep, path):
            if len(row) != len(columns):
                raise TochaError(
                    f"{path}, line {line}: {len(row)} fields where the header has {len(columns)}"
                )
            for name, value in zip(columns, row, strict=True):
                values[name].append(value.strip())
    if not values[columns[0]]:
        raise TochaError(f"{path}: a header and no rows")
    return RawTable(path, columns, values)


def rows(f: io.TextIOBase, sep: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(f, delimiter=sep)
    for count, row in enumerate(reader, start=1):
        if count > MAX_ROWS:
            raise TochaError(f"{path}: over {MAX_ROWS:,} rows; sample it into a smaller file first")
        if row:  # a blank line ends nothing and holds nothing
            yield reader.line_num + 1, row  # + 1: the header was read before the reader began


def parse_numbers(table: RawTable, column: str) -> np.ndarray | None:
    """The column as float64 (NaN where missing), or None if it is text. A column that is numbers
    but for a few values is an error naming the first such value's row."""
    numbers, bad = np.empty(len(table)), []
    for i, value in enumerate(table.values[column]):
        if value.lower() in MISSING:
            numbers[i] = math.nan
            continue
        try:
            numbers[i] = float(value)
        except ValueError:
            bad.append(i)
    if not bad:
        return numbers
    if len(bad) <= 0.1 * len(table):  # mostly numbers: a typo, not a text column
        i = bad[0]
        value = table.values[column][i]
        raise TochaError(f"{table.path}, row {i + 1}, column {column!r}: {value!r} is not a number "
                         f"(and {len(bad) - 1} more in that column)")  # fmt: skip
    return None


def target_column(table: RawTable, column: str) -> tuple[list[str], np.ndarray | None]:
    """The target column's cells, and its numbers (None when it is text). Every row needs its
    target: nobody can impute one."""
    if column not in table.columns:
        raise TochaError(f"{table.path}: no column {column!r}; its columns: {', '.join(table.columns)}")
    numbers = parse_numbers(table, column)
    if numbers is not None and np.isnan(numbers).any():
        raise TochaError(
            f"{table.path}: the target {column!r} is missing in {int(np.isnan(numbers).sum())} rows"
        )
    return table.values[column], numbers


def read_target(table: RawTable, column: str, task: str | None = None) -> Target:
    """The target column through its task (`task`, or guessed from its values: `guess_task`)."""
    cells, numbers = target_column(table, column)
    name, why = (task, "as asked") if task else guess_task(cells, numbers, column)
    target = make_task(name).read_target(cells, numbers, column, str(table.path))
    target.why, target.task = target.why or why, name
    return target


def guess_task(cells: list[str], numbers: np.ndarray | None, column: str) -> tuple[str, str]:
    """`--task auto`: classification for a text target or one of few integer values, regression
    for any other numbers; and the reason, for the run's first line."""
    distinct = len(set(cells))
    integers = numbers is not None and bool(np.all(numbers == np.round(numbers)))
    if numbers is None:
        return ClassificationTask.name, f"{column} is text"
    if integers and distinct <= MAX_CLASSES_FOR_INTEGERS:
        return ClassificationTask.name, f"{column} has {distinct} integer values"
    return RegressionTask.name, f"{column} is numeric with {distinct} distinct values"


@dataclass
class TableEncoder:
    """Numeric columns standardised, text columns one-hot, all fitted on the training rows."""

    numeric: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)  # text column -> categories seen
    fill: dict[str, float] = field(default_factory=dict)  # numeric column -> value for missing cells

    @property
    def feature_names(self) -> list[str]:
        return self.numeric + [f"{c}={v}" for c, values in self.categories.items() for v in values]

    @classmethod
    def fit(cls, table: RawTable, columns: list[str], rows: np.ndarray, fill: str | None) -> TableEncoder:
        """Choose each column's encoding from the training `rows`; missing values need `fill`."""
        if fill is not None and fill not in FILLS:
            raise TochaError(f"--fill {fill!r}: choose from {', '.join(FILLS)}")
        encoder, missing = cls(), {}
        for column in columns:
            numbers = parse_numbers(table, column)
            if numbers is None:
                encoder.categories[column] = sorted(
                    str(v) for v in set(np.array(table.values[column])[rows]) - {""}
                )
                continue
            encoder.numeric.append(column)
            gaps = int(np.isnan(numbers).sum())
            if gaps:
                missing[column] = gaps
            seen = numbers[rows][~np.isnan(numbers[rows])]
            encoder.fill[column] = (
                float(np.median(seen) if fill == "median" else seen.mean()) if len(seen) else 0.0
            )
        if missing and fill is None:
            listed = ", ".join(f"{c} ({n})" for c, n in missing.items())
            raise TochaError(
                f"{table.path}: missing values in {listed}; give --fill mean, median or drop-rows"
            )
        return encoder

    def to_dict(self) -> dict[str, object]:
        return {"numeric": self.numeric, "categories": self.categories, "fill": self.fill}

    @classmethod
    def from_dict(cls, d: dict) -> TableEncoder:
        return cls(list(d["numeric"]), {k: list(v) for k, v in d["categories"].items()}, dict(d["fill"]))

    def count_unseen(self, x: np.ndarray) -> int:
        """In encoded rows `x`, the text values whose one-hot block is all zeros: a category not seen
        in training (what `transform` counts), read off the rows without parsing them again."""
        start, unseen = len(self.numeric), 0
        for categories in self.categories.values():
            unseen += int((~x[:, start : start + len(categories)].any(axis=1)).sum())
            start += len(categories)
        return unseen

    def transform(self, table: RawTable) -> tuple[np.ndarray, int]:
        """float32 features (rows, features) and the count of categories never seen in training."""
        blocks, unseen = [], 0
        for column in self.numeric:
            numbers = parse_numbers(table, column)
            if numbers is None:
                raise TochaError(f"{table.path}: column {column!r} is text; in training it held numbers")
            blocks.append(np.where(np.isnan(numbers), self.fill[column], numbers)[:, None])
        for column, categories in self.categories.items():
            index = {v: i for i, v in enumerate(categories)}
            onehot = np.zeros((len(table), len(categories)))
            for row, value in enumerate(table.values[column]):
                if value in index:
                    onehot[row, index[value]] = 1.0
                else:
                    unseen += 1  # all zeros: none of the known categories
            blocks.append(onehot)
        return np.concatenate(blocks, axis=1).astype(np.float32), unseen


def rows_with_gaps(table: RawTable, columns: list[str]) -> np.ndarray:
    """A boolean mask of rows with a missing value in any of `columns` (for --fill drop-rows)."""
    gaps = np.zeros(len(table), dtype=bool)
    for column in columns:
        gaps |= np.array([v.lower() in MISSING for v in table.values[column]])
    return gaps
