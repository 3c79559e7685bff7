"""Rows of a CSV for a model trained on a table: encoded exactly as its training rows were (the
encoder stored in the checkpoint), and their target column read as the model's labels.

A row with a missing value is an error naming the columns, unless training filled gaps (`--fill
mean|median`: the training rows' value is used). A category never seen in training becomes an
all-zero one-hot block; both are said beside the row's answer. Everything here takes the run's table
record (`data.table_set.table_info`), not the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.data.table import RawTable, target_column
from tocha.data.table_encoder import Adjusted, encode_file
from tocha.errors import TochaError
from tocha.tasks import Task


def encode_rows(
    table_info: dict[str, Any], path: str | Path
) -> tuple[torch.Tensor, RawTable, list[Adjusted]]:
    """The file's rows as the model's float32 inputs (N, F), the table, and the cells not taken as
    they were (`data.table_encoder.encode_file`)."""
    x, table, adjusted = encode_file(table_info, path)
    return torch.from_numpy(x), table, adjusted


def target_labels(
    table_info: dict[str, Any], task: Task, classes: list[str], table: RawTable
) -> torch.Tensor:
    """The file's target column as the model's labels (its task reads them against its classes)."""
    column = table_info["target"]
    cells, numbers, missing = target_column(table, column)
    missing = task.unusable_targets(cells, missing)
    if missing.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(missing)[:5])
        raise TochaError(
            f"{table.path}: the target {column!r} is missing in {int(missing.sum())} rows "
            f"(rows {rows}); a row without its target cannot be scored"
        )
    return torch.from_numpy(task.read_labels(cells, numbers, column, str(table.path), classes=classes))


def as_rows(rows: object, table_info: dict[str, Any]) -> torch.Tensor:
    """A CSV's path, or rows already encoded (N, F) in the order of `table_info['features']`, as
    the float32 rows the model takes."""
    if isinstance(rows, str | Path):
        return encode_rows(table_info, rows)[0]
    try:
        x = torch.as_tensor(np.asarray(rows, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise TochaError(
            f"rows must be a CSV's path or numbers (N, F), not {type(rows).__name__} ({e})"
        ) from None
    if x.numel() == 0:
        raise TochaError("no rows to predict")
    width = len(table_info["features"])
    if x.ndim != 2 or x.shape[1] != width:
        raise TochaError(
            f"expected encoded rows (N, {width}) in the order of model.table['features'], "
            f"got {tuple(x.shape)}; or give the path of a CSV"
        )
    return x
