"""CSV / TSV tables: the reader, and the one rule that types a column.

The file is parsed as a stream (Python's csv module: quoted fields, embedded commas, `.gz`) with
its separator detected from the header (comma, semicolon or tab) and its text decoded as UTF-8 (a
byte-order mark says UTF-16 or UTF-8 with a BOM); its size, rows, decompressed bytes and cells are
bounded while it is read. Every problem is one error that says where.

How a column is typed, one stated rule (`column_numbers`):
- a cell is missing when it is empty or one of `MISSING` (NA, n/a, #N/A and Excel's other error
  values, null, none, nan, ?), in any case;
- a cell is a number when it is digits with an optional sign, decimal point and exponent (`1`,
  `-2.5`, `.5`, `3e-4`); the decimal mark is `.`, or `,` when `--decimal ,` says so or the file is
  `;`-separated and writes its decimals with commas (the European CSV);
- a column whose every present cell is a number is numeric; one where fewer than half are is text
  (one-hot encoded); anything between is a mistake, and an error names the column, its rows and
  its words (never silently one-hot);
- a number must be finite in float32 (`inf`, `1e999`, `1e39` are refused naming row and column).
What a target column means is its task's to say (`tocha.tasks`: `read_target`); the encoding of
feature columns is `data.table_encoder`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tocha.errors import TochaError
from tocha.files import regular_file
from tocha.tasks import ClassificationTask, RegressionTask, Target, Task, make_task

MAX_BYTES = 512 << 20  # a table over this, on disk or decompressed, is refused: sample it first
MAX_ROWS = 2_000_000
MAX_CELL = 100_000  # characters in one cell: a longer one is not a table's value
# Missing, in any case: empty, the usual markers, and Excel's error values (a formula that failed).
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "#n/a", "#na", "#value!", "#div/0!", "#ref!",
           "#name?", "#num!", "#null!"}  # fmt: skip
FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
COMMA_DECIMAL = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")
FILLS_KNOWN = ("mean", "median", "drop-rows")  # what `--fill` may be (`data.table_encoder.FILLS`)
MAX_CLASSES_FOR_INTEGERS = 20  # an integer target with at most this many values is classification


@dataclass
class RawTable:
    """The parsed file: every column's values as text, in file order, and its decimal mark."""

    path: Path
    columns: list[str]
    values: dict[str, list[str]]
    decimal: str = "."

    def __len__(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0

    def take(self, rows: np.ndarray) -> RawTable:
        """The same table with only `rows`, in that order."""
        values = {c: [cells[i] for i in rows] for c, cells in self.values.items()}
        return RawTable(self.path, self.columns, values, self.decimal)


class Bounded(io.RawIOBase):
    """A binary stream that refuses to give more than `limit` bytes: a small `.gz` can inflate to
    any size, so its decompressed bytes are counted as they are read."""

    def __init__(self, raw: io.BufferedIOBase, limit: int, path: Path) -> None:
        self.raw, self.limit, self.path, self.count = raw, limit, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise TochaError(f"{self.path}: over {self.limit:,} bytes once decompressed; sample its rows "
                             "into a smaller file first")  # fmt: skip
        buffer[: len(data)] = data
        return len(data)


def encoding_of(start: bytes) -> str:
    """UTF-16 or UTF-8 as a byte-order mark says; UTF-8 without one."""
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"  # a UTF-8 BOM is dropped


def open_text(path: Path, limit: int = MAX_BYTES) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    bounded = io.BufferedReader(Bounded(raw, limit, path))
    return io.TextIOWrapper(bounded, encoding=encoding_of(bounded.peek(4)[:4]), newline="")


def separator(path: Path, header: str) -> str:
    if ".tsv" in path.suffixes:
        return "\t"
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.get)  # type: ignore[arg-type]
    if counts[best] == 0:
        raise TochaError(f"{path}: the header has no comma, semicolon or tab: one column is not a table")
    return best


PREPARE_IT = "prepare it once instead (tocha data prepare FILE --target COLUMN --out DIR), then train on DIR"


def read_table(path: str | Path, decimal: str = "auto") -> RawTable:
    """Parse a CSV / TSV (optionally .gz) with a header row. `decimal`: "." or ",", or "auto"
    (`,` for a `;`-separated file that writes its decimals with commas). A file over `MAX_BYTES` or
    `MAX_ROWS` is refused: such a table is prepared, read by `table_chunks`."""
    path = regular_file(path, "table")
    if path.stat().st_size > MAX_BYTES:
        raise TochaError(f"{path}: {path.stat().st_size:,} bytes is over the {MAX_BYTES:,} a table read into "
                         f"memory may have; {PREPARE_IT}")  # fmt: skip
    table = next(table_chunks(path, decimal, MAX_ROWS + 1, limit=MAX_BYTES))
    if len(table) > MAX_ROWS:
        raise TochaError(f"{path}: over {MAX_ROWS:,} rows, more than a table read into memory may have; "
                         f"{PREPARE_IT}")  # fmt: skip
    return table


def table_chunks(path: Path, decimal: str, chunk_rows: int, limit: int = 1 << 62) -> Iterator[RawTable]:
    """The table `chunk_rows` rows at a time, read as a stream (a table of any size, in bounded
    memory): every chunk has the header's columns and the decimal mark the first chunk shows."""
    try:
        with open_text(path, limit) as f:
            header = f.readline().lstrip("\ufeff")  # a byte-order mark written twice
            if not header.strip():
                raise TochaError(f"{path}: empty file (no header row)")
            sep = separator(path, header)
            columns = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
            if len(set(columns)) != len(columns):
                twice = sorted({c for c in columns if columns.count(c) > 1})
                raise TochaError(f"{path}: column names appear twice: {', '.join(twice)}")
            values: dict[str, list[str]] = {c: [] for c in columns}
            count = 0
            for line, row in rows(f, sep, path):
                if len(row) != len(columns):
                    raise TochaError(
                        f"{path}, line {line}: {len(row)} fields where the header has {len(columns)}"
                    )
                for name, value in zip(columns, row, strict=True):
                    values[name].append(value.strip())
                count += 1
                if count % chunk_rows == 0:
                    decimal = decimal_mark(values, sep) if decimal == "auto" else decimal
                    yield RawTable(path, columns, values, decimal)
                    values = {c: [] for c in columns}
    except UnicodeDecodeError as e:
        raise TochaError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                         "save it as UTF-8 (or UTF-16 with its byte-order mark)") from None  # fmt: skip
    if not count:
        raise TochaError(f"{path}: a header and no rows")
    if values[columns[0]]:
        yield RawTable(path, columns, values, decimal_mark(values, sep) if decimal == "auto" else decimal)


def rows(f: io.TextIOBase, sep: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(f, delimiter=sep)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # a field over the csv module's limit, a stray NUL...
            raise TochaError(f"{path}, line {reader.line_num + 1}: not a table's line ({e})") from None
        if any(len(cell) > MAX_CELL for cell in row):
            raise TochaError(f"{path}, line {reader.line_num + 1}: a cell of over {MAX_CELL:,} characters")
        if row:  # a blank line ends nothing and holds nothing
            yield reader.line_num + 1, row  # + 1: the header was read before the reader began


def decimal_mark(values: dict[str, list[str]], sep: str) -> str:
    """`,` for a `;`-separated table whose numbers use decimal commas and never decimal points."""
    if sep != ";":
        return "."
    cells = [cell for column in values.values() for cell in column[:1000]]
    commas = any(COMMA_DECIMAL.fullmatch(cell) for cell in cells)
    points = any("." in cell and NUMBER.fullmatch(cell) for cell in cells)
    return "," if commas and not points else "."


def is_missing(cell: str) -> bool:
    return cell.lower() in MISSING


def column_numbers(table: RawTable, column: str) -> np.ndarray | None:
    """The column as float64 (NaN where missing) by the module's rule, or None if it is text; a
    column of mostly numbers with some words, or a number beyond float32, is an error naming them."""
    numbers, kinds = read_cells(table.values[column], table.decimal)
    return numbers if kinds.decide(table.path, column) else None


@dataclass
class CellKinds:
    """What a column's cells are, counted (over one table, or summed over a table's chunks): how
    many are present, the rows (from 0) and text of the first words and of the first number beyond
    float32, and how many words in all. `decide` applies the module's rule."""

    present: int = 0
    words: int = 0
    first_words: list[tuple[int, str]] = field(default_factory=list)
    first_huge: tuple[int, str] | None = None

    def add(self, other: CellKinds, offset: int) -> None:
        """Count a later chunk's cells, its rows starting at `offset`."""
        self.present += other.present
        self.words += other.words
        self.first_words += [(offset + i, c) for i, c in other.first_words][: 3 - len(self.first_words)]
        if self.first_huge is None and other.first_huge is not None:
            self.first_huge = (offset + other.first_huge[0], other.first_huge[1])

    def decide(self, path: Path, column: str) -> bool:
        """True for a numeric column, False for text; a mistake between the two, or a number a model
        cannot take, is an error naming the column, the rows and the cells."""
        if self.words and self.words > self.present / 2:
            return False
        if self.words:
            shown = ", ".join(f"{cell!r} (row {i + 1})" for i, cell in self.first_words)
            i, cell = self.first_words[0]
            raise TochaError(f"{path}, row {i + 1}, column {column!r}: {cell!r} is not a number, in a column "
                             f"of numbers (and {self.words - 1} more: {shown}); fix or blank those cells, or "
                             f"leave the column out with --drop {column}")  # fmt: skip
        if self.first_huge is not None:
            i, cell = self.first_huge
            raise TochaError(f"{path}, row {i + 1}, column {column!r}: {cell!r} is not a finite number a "
                             f"model can take (beyond float32's {FLOAT32_MAX:.3g})")  # fmt: skip
        return True


def read_cells(cells: list[str], decimal: str) -> tuple[np.ndarray, CellKinds]:
    """The cells as float64 (NaN where missing or a word) and what they are, counted."""
    numbers, kinds = np.full(len(cells), math.nan), CellKinds()
    for i, cell in enumerate(cells):
        if is_missing(cell):
            continue
        kinds.present += 1
        written = cell.replace(",", ".") if decimal == "," else cell
        if NUMBER.fullmatch(written):
            numbers[i] = float(written)
        else:
            kinds.words += 1
            if len(kinds.first_words) < 3:
                kinds.first_words.append((i, cell))
    huge = np.flatnonzero(np.abs(numbers) > FLOAT32_MAX)  # inf and what float32 cannot hold
    if len(huge):
        kinds.first_huge = (int(huge[0]), cells[huge[0]])
    return numbers, kinds


def target_column(table: RawTable, column: str) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """The target column's cells, its numbers (None when it is text), and the rows where it is
    missing (nobody can impute a target: see `missing_targets`)."""
    if column not in table.columns:
        raise TochaError(f"{table.path}: no column {column!r}; its columns: {', '.join(table.columns)}")
    cells = table.values[column]
    return cells, column_numbers(table, column), np.array([is_missing(c) for c in cells], dtype=bool)


def choose_task(table: RawTable, column: str, declared: str | None) -> tuple[Task, str, np.ndarray]:
    """The target's task (`declared`, or guessed from its present values: `guess_task`), why, and
    the rows whose target the task cannot use (a missing one, unless the task reads it)."""
    cells, numbers, missing = target_column(table, column)
    if declared:
        name, why = declared, "as asked"
    else:
        present = [cell for cell, gone in zip(cells, missing, strict=True) if not gone]
        name, why = guess_task(present, numbers[~missing] if numbers is not None else None, column)
    task = make_task(name)
    return task, why, task.unusable_targets(cells, missing)


def read_target(table: RawTable, column: str, task: str | None = None) -> Target:
    """The target column through its task (`task`, or guessed from its values); every row needs a
    target its task can read."""
    chosen, why, unusable = choose_task(table, column, task)
    if unusable.any():
        raise TochaError(f"{table.path}: the target {column!r} is missing in {int(unusable.sum())} rows; "
                         "nobody can fill a target: any --fill (drop-rows, mean, median) leaves those rows "
                         "out")  # fmt: skip
    cells, numbers, _ = target_column(table, column)
    target = chosen.read_target(cells, numbers, column, str(table.path))
    target.why, target.task = target.why or why, chosen.name
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


def rows_with_gaps(table: RawTable, columns: list[str]) -> np.ndarray:
    """A boolean mask of rows with a missing value in any of `columns` (for --fill drop-rows)."""
    gaps = np.zeros(len(table), dtype=bool)
    for column in columns:
        gaps |= np.array([is_missing(v) for v in table.values[column]])
    return gaps
