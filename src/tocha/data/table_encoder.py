"""`TableEncoder`: a table's feature columns as the float32 rows a model takes, fitted on the
training rows only: numeric columns kept raw (standardised later by `Normalize`, on the device),
missing cells filled when asked, text columns one-hot with the training rows' categories (a
category never seen in training is an all-zero block, and is counted). It travels in the checkpoint,
so `tocha predict` encodes new rows exactly as training did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.table import FILLS_KNOWN, RawTable, column_numbers, read_table, rows_with_gaps
from tocha.errors import TochaError

FILLS = FILLS_KNOWN
MAX_CATEGORIES = 1000  # a text column with more is an ID or free text, not a category


def check_gaps(table: RawTable, columns: list[str], rows: np.ndarray) -> None:
    """Missing numbers in `rows` of `columns` need a `--fill`: an error naming the columns and counts
    (a missing text is an all-zero one-hot block, as an unseen category is)."""
    counts = {}
    for column in columns:
        numbers = column_numbers(table, column)
        if numbers is not None:
            counts[column] = int(np.isnan(numbers[rows]).sum())
    listed = ", ".join(f"{c} ({n})" for c, n in counts.items() if n)
    if listed:
        raise TochaError(f"{table.path}: missing values in {listed}; give --fill mean, median or drop-rows")


@dataclass(frozen=True)
class Adjusted:
    """A cell of a table's row that the model could not take as it is, and what was done."""

    row: int  # from 0
    column: str
    what: str

    def text(self) -> str:
        return f"{self.column} {self.what}"


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
        """Choose each column's encoding from the training `rows`; missing values there need `fill`."""
        if fill is not None and fill not in FILLS:
            raise TochaError(f"--fill {fill!r}: choose from {', '.join(FILLS)}")
        if fill is None:
            check_gaps(table, columns, rows)
        encoder = cls()
        for column in columns:
            numbers = column_numbers(table, column)
            if numbers is None:
                encoder.categories[column] = categories(table, column, rows)
                continue
            encoder.numeric.append(column)
            seen = numbers[rows][~np.isnan(numbers[rows])]
            encoder.fill[column] = (
                float(np.median(seen) if fill == "median" else seen.mean()) if len(seen) else 0.0
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

    def transform(self, table: RawTable) -> tuple[np.ndarray, list[Adjusted]]:
        """float32 features (rows, features), and each cell not taken as it is: a missing number
        filled, a category never seen in training (or a missing text) left as an all-zero block."""
        blocks, adjusted = [], []
        for column in self.numeric:
            numbers = column_numbers(table, column)
            if numbers is None:
                raise TochaError(f"{table.path}: column {column!r} is text; in training it held numbers")
            gaps = np.isnan(numbers)
            adjusted += [
                Adjusted(
                    int(row), column, f"missing, filled with {self.fill[column]:.6g} (from the training rows)"
                )
                for row in np.flatnonzero(gaps)
            ]
            blocks.append(np.where(gaps, self.fill[column], numbers)[:, None])
        for column, categories in self.categories.items():
            index = {v: i for i, v in enumerate(categories)}
            onehot = np.zeros((len(table), len(categories)))
            for row, value in enumerate(table.values[column]):
                if value in index:
                    onehot[row, index[value]] = 1.0
                else:  # all zeros: none of the known categories
                    what = "missing" if value == "" else f"{value!r} not seen in training"
                    adjusted.append(Adjusted(row, column, f"{what}: no known category"))
            blocks.append(onehot)
        adjusted.sort(key=lambda a: a.row)
        return np.concatenate(blocks, axis=1).astype(np.float32), adjusted


def categories(table: RawTable, column: str, rows: np.ndarray) -> list[str]:
    """A text column's categories in the training rows, sorted; too many is an ID or free text,
    refused before a one-hot block as wide as the table is made."""
    cells = table.values[column]
    seen = sorted({cells[i] for i in rows} - {""})
    if len(seen) > MAX_CATEGORIES:
        raise TochaError(
            f"{table.path}: column {column!r} holds {len(seen):,} different texts, over the "
            f"{MAX_CATEGORIES:,} categories a one-hot column may have: an ID or free text? "
            f"Leave it out with --drop {column}"
        )
    return seen


def encode_file(table_info: dict, path: str | Path) -> tuple[np.ndarray, RawTable, list[Adjusted]]:
    """A CSV's rows as a trained model's float32 inputs (N, F), encoded as its training rows were
    (`table_info`: the run's table record), the table, and the cells not taken as they are. A row
    with a missing value is an error naming the rows, unless training filled gaps."""
    table = read_table(path)
    x, adjusted = encode_table(table_info, table)
    return x, table, adjusted


def encode_table(table_info: dict, table: RawTable) -> tuple[np.ndarray, list[Adjusted]]:
    """A table's rows encoded as `encode_file` encodes a file's."""
    path = table.path
    encoder = TableEncoder.from_dict(table_info["encoder"])
    needed = encoder.numeric + list(encoder.categories)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise TochaError(f"{path}: no column {', '.join(missing)}; the model needs {', '.join(needed)}")
    if table_info["fill"] not in ("mean", "median"):
        gaps = rows_with_gaps(table, encoder.numeric)
        if gaps.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(gaps)[:5])
            raise TochaError(
                f"{path}: {int(gaps.sum())} rows have missing values (rows {rows}...); "
                "trained without --fill mean or median, the model cannot fill them"
            )
    return encoder.transform(table)


def row_keys(table: RawTable, dropped: list[str] | None) -> tuple[str, list[Any]]:
    """What names each row of a predicted file: the first column the run dropped (an ID, `--drop
    id`) that the file has, so answers join back to its rows; else the row's number from 1."""
    column = next((c for c in dropped or [] if c in table.columns), None)
    if column is None:
        return "row", list(range(1, len(table) + 1))
    return column, list(table.values[column])
