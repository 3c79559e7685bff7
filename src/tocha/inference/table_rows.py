"""Rows of a CSV through a model trained on a table: encoded exactly as its training rows were (the
encoder stored in the checkpoint), then predicted, or scored against their target column.

A row with a missing value is an error naming the columns, unless training filled gaps (`--fill
mean|median`: the training rows' value is used). A category never seen in training becomes an
all-zero one-hot block, and is counted in the answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tocha.data.table import RawTable, TableEncoder, read_table, read_target, rows_with_gaps
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.inference.model import InferenceModel, load_inference_model
from tocha.inference.predict import ranked_classes


def encode_rows(model: InferenceModel, path: str | Path) -> tuple[torch.Tensor, RawTable, int]:
    """The file's rows as the model's float32 inputs (N, F), the table, and the count of unseen
    categories."""
    if model.table is None:
        raise TochaError(f"{path}: this model was trained on images; give it image files")
    encoder = TableEncoder.from_dict(model.table["encoder"])
    table = read_table(path)
    needed = encoder.numeric + list(encoder.categories)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise TochaError(f"{path}: no column {', '.join(missing)}; the model needs {', '.join(needed)}")
    if model.table["fill"] not in ("mean", "median"):
        gaps = rows_with_gaps(table, needed)
        if gaps.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(gaps)[:5])
            raise TochaError(f"{path}: {int(gaps.sum())} rows have missing values (rows {rows}...); "
                             "trained without --fill mean or median, the model cannot fill them")  # fmt: skip
    x, unseen = encoder.transform(table)
    return torch.from_numpy(x), table, unseen


def table_targets(model: InferenceModel, table: RawTable) -> torch.Tensor:
    """The file's target column, as the model's targets: numbers, or indices of the model's classes."""
    info = model.table
    assert info is not None
    target = read_target(table, info["target"], info["task"])
    if info["task"] == "regression":
        return torch.from_numpy(target.values)
    index = {name: i for i, name in enumerate(model.classes)}
    unknown = sorted(set(target.classes) - set(index))
    if unknown:
        raise TochaError(
            f"{table.path}: classes {', '.join(unknown)} are not the model's: {', '.join(model.classes)}"
        )
    return torch.tensor([index[target.classes[i]] for i in target.values.tolist()])


def predict_table(model: InferenceModel, rows: object, top_k: int = 3) -> list[dict[str, object]]:
    """For each row (of a CSV path, or an encoded float array / tensor (N, F)), numbered from 1:
    the predicted value under the target's name, or the top-k classes."""
    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    if isinstance(rows, str | Path):
        x = encode_rows(model, rows)[0]
    else:
        x = torch.as_tensor(np.asarray(rows, dtype=np.float32))
        width = len(model.table["features"]) if model.table else 0
        if x.ndim != 2 or x.shape[1] != width:
            raise TochaError(f"expected encoded rows (N, {width}) in the order of model.table['features'], "
                             f"got {tuple(x.shape)}; or give the path of a CSV")  # fmt: skip
    if model.is_regression:
        values = model.logits(x.to(model.device))[:, 0].tolist()
        return [{"row": i + 1, model.classes[0]: float(v)} for i, v in enumerate(values)]
    return [{"row": i + 1, "top": top} for i, top in enumerate(ranked_classes(model, x, top_k))]


def predict_rows(run_or_checkpoint: str | Path, path: str | Path, top_k: int = 3,
                 device: str = "cpu") -> list[dict[str, object]]:  # fmt: skip
    """`tocha predict RUN rows.csv`: each row's prediction (see `predict_table`)."""
    return predict_table(load_inference_model(run_or_checkpoint, resolve_device(device)), path, top_k)
