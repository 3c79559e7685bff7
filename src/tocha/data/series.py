"""A time series as a dataset (`--task forecast --target COLUMN --window W --horizon H`): a CSV's
rows in time order, each sample the `window` rows up to a time and its targets the `horizon` values
of the target column after it.

Nothing of the future leaks into the past: the series is cut in order (the last `test_fraction` of
its rows is the test stretch, the `val_fraction` before it the validation stretch, never shuffled
across time), a sample belongs to the stretch its targets fall in (its window may look back into the
stretch before, which is known by then), and the columns are standardised with the training
stretch's mean and std alone. The time column (the first, or `--sort-by`'s) orders the rows and is
not an input; every other numeric column is (the target's own past first). A gap (an empty cell)
is filled by a straight line between its neighbours, and said.

Samples are held as (N, F, W, 1) float32: a channel per column, the window along it; the network
takes them as rows (N, F*W) (a table's models: `linear`, `mlp`) or your own model does. The run's
record (`table`, with `series`) keeps what a forecast of new rows needs: the columns, the window,
the horizon, the scale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.table import RawTable, column_numbers, read_table
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.tasks import Answers, Task


def series_columns(table: RawTable, cfg: DataConfig) -> tuple[str | None, list[str]]:
    """The time column (None where there is none to order by) and the input columns, the target first."""
    if cfg.target is None:
        raise TochaError(
            f"{table.path}: which column is forecast? Give --target COLUMN; its columns: "
            f"{', '.join(table.columns)}"
        )
    unknown = [
        c
        for c in [cfg.target, *(cfg.drop or []), *([cfg.sort_by] if cfg.sort_by else [])]
        if c not in table.columns
    ]
    if unknown:
        raise TochaError(f"{table.path}: no column {unknown[0]!r}; its columns: {', '.join(table.columns)}")
    time = cfg.sort_by or (table.columns[0] if table.columns[0] != cfg.target else None)
    inputs = [cfg.target] + [c for c in table.columns if c not in (cfg.target, time, *(cfg.drop or []))]
    text = [c for c in inputs if column_numbers(table, c) is None]
    if text:
        raise TochaError(
            f"{table.path}: column {text[0]!r} is text; a series' inputs are numbers (--drop it)"
        )
    return time, inputs


def in_time_order(table: RawTable, time: str | None, sort_by: str | None) -> RawTable:
    """The rows in time order: as they are, checked, or sorted by `--sort-by` (stable)."""
    if time is None:
        return table
    numbers = column_numbers(table, time)
    keys = numbers if numbers is not None else np.array(table.values[time], dtype=object)
    if numbers is not None and np.isnan(numbers).any():
        raise TochaError(
            f"{table.path}: the time column {time!r} is empty in row {int(np.isnan(numbers).argmax()) + 2}"
        )
    order = np.argsort(keys, kind="stable")
    if sort_by:
        return table.take(order)
    back = (
        np.flatnonzero(keys[1:] < keys[:-1])
        if numbers is not None
        else np.flatnonzero([b < a for a, b in zip(keys, keys[1:], strict=False)])
    )
    if len(back):
        row = int(back[0]) + 3  # the file's line: a header, then rows from 2
        cells = table.values[time]
        raise TochaError(
            f"{table.path}: the time column {time!r} goes back at line {row} ({cells[back[0] + 1]} "
            f"after {cells[back[0]]}): give --sort-by {time} to sort the rows by it"
        )
    return table


def interpolated(values: np.ndarray, column: str, where: str, log: Callable[[str], None]) -> np.ndarray:
    """A column with each gap filled by a straight line between its neighbours (ends: the nearest value)."""
    gaps = np.isnan(values)
    if gaps.all():
        raise TochaError(f"{where}: column {column!r} is empty")
    if gaps.any():
        known = np.flatnonzero(~gaps)
        values = values.copy()
        values[gaps] = np.interp(np.flatnonzero(gaps), known, values[known])
        log(
            f"{where}: {int(gaps.sum())} empty cells of {column!r} filled by a straight line between their "
            "neighbours"
        )
    return values


def samples(values: np.ndarray, window: int, horizon: int, ends: range) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (N, F, W, 1), targets (N, H)) of the samples whose window ends at each time in `ends`
    (exclusive: the window is rows [end - W, end), its targets rows [end, end + H) of column 0)."""
    starts = np.array(list(ends), dtype=np.int64) - window
    take = starts[:, None] + np.arange(window)[None, :]
    inputs = values[take].transpose(0, 2, 1)[..., None]  # (N, W, F) -> (N, F, W, 1)
    targets = values[starts[:, None] + window + np.arange(horizon)[None, :], 0]
    return np.ascontiguousarray(inputs, dtype=np.float32), np.ascontiguousarray(targets, dtype=np.float32)


def load_series(cfg: DataConfig, name: str, log: Callable[[str], None] = print) -> LoadedData:
    """The series `name` (a CSV) as forecast samples, split in order, standardised on the training stretch."""
    path = Path(name).expanduser()
    if cfg.train_limit is not None:
        raise TochaError(
            "--train-limit draws samples at random; a series is cut in time order: give a shorter series"
        )
    table = read_table(path, cfg.decimal)
    time, columns = series_columns(table, cfg)
    table = in_time_order(table, time, cfg.sort_by)
    raw = np.stack([interpolated(column_numbers(table, c), c, path.name, log) for c in columns], axis=1)
    n, window, horizon = len(raw), cfg.window, cfg.horizon
    n_test = int(n * cfg.test_fraction)
    n_val = int((n - n_test) * cfg.val_fraction)
    n_train = n - n_test - n_val
    if window + horizon > n_train:
        raise TochaError(
            f"{path}: a window of {window} and a horizon of {horizon} need {window + horizon} rows; "
            f"the training stretch has {n_train} of the series' {n}: give a smaller --window or "
            "--horizon, or a longer series"
        )
    mean, std = raw[:n_train].mean(0), raw[:n_train].std(0)
    std = np.where(std > 0, std, 1.0)
    stretches = {
        "train": range(window, n_train - horizon + 1),
        "val": range(max(window, n_train), n_train + n_val - horizon + 1),
        "test": range(max(window, n_train + n_val), n - horizon + 1),
    }
    if len(stretches["test"]) == 0:
        raise TochaError(
            f"{path}: the test stretch ({n_test} rows) is shorter than the horizon {horizon}: give a "
            "larger --test-fraction or a smaller --horizon"
        )
    splits = {
        s: TensorSet(*map(torch.from_numpy, samples(raw, window, horizon, ends)))
        for s, ends in stretches.items()
        if len(ends)
    }
    target = columns[0]
    record = {
        "target": target,
        "task": "forecast",
        "fill": None,
        "features": columns,
        "dropped": list(cfg.drop or []),
        "target_scale": [float(mean[0]), float(std[0])],
        "series": {
            "window": window,
            "horizon": horizon,
            "time": time,
            "mean": mean.tolist(),
            "std": std.tolist(),
        },
    }
    said = f", {', '.join(columns[1:])} beside it" if len(columns) > 1 else ""
    return LoadedData(
        name=str(path),
        classes=[f"{target}[t+{h + 1}]" for h in range(horizon)],
        train=splits["train"],
        test=splits["test"],
        source=(
            f"{path}: {n:,} rows{f' in {time} order' if time else ''}, forecast {target}{said}: windows of "
            f"{window}, the next {horizon}; the last {cfg.test_fraction:.0%} for testing"
        ),
        details={"series": record["series"], "season": cfg.season},
        task="forecast",
        table=record,
        val=splits.get("val"),
        val_source=f"the {cfg.val_fraction:.0%} of the series before the test stretch, in order"
        if "val" in splits
        else "",
    )


def series_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a series record (as a checkpoint holds it), or None."""
    series = record.get("series")
    if not isinstance(series, dict):
        return "its series record is not a mapping"
    columns = record.get("features")
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        return "its series record names no columns"
    for key in ("window", "horizon"):
        if not (isinstance(series.get(key), int) and series[key] >= 1):
            return f"its series record's {key} is not a positive whole number"
    stats = [series.get("mean"), series.get("std")]
    if not all(isinstance(s, list) and len(s) == len(columns) for s in stats):
        return "its series record's scale does not cover its columns"
    return None


def forecast_input(
    record: dict[str, Any], path: str | Path, log: Callable[[str], None] = print
) -> np.ndarray:
    """The last `window` rows of a CSV of the run's columns as one sample (1, F, W, 1): what
    `tocha predict RUN series.csv` forecasts from."""
    series = record["series"]
    table = read_table(Path(path))
    cfg = DataConfig(
        name=str(path),
        target=record["target"],
        sort_by=series["time"] if series["time"] in table.columns else None,
        drop=[c for c in table.columns if c not in record["features"] and c != series["time"]],
    )
    time, columns = series_columns(table, cfg)
    if columns != record["features"]:
        raise TochaError(
            f"{path}: the run reads columns {', '.join(record['features'])}; this file has "
            f"{', '.join(columns)}"
        )
    table = in_time_order(table, time, None)
    raw = np.stack([interpolated(column_numbers(table, c), c, Path(path).name, log) for c in columns], axis=1)
    if len(raw) < series["window"]:
        raise TochaError(f"{path}: {len(raw)} rows; the run forecasts from the last {series['window']}")
    return samples(raw, series["window"], 0, range(len(raw), len(raw) + 1))[0]


def answered_forecast(
    task: Task, classes: list[str], answers: list[Any], path: str | Path, record: dict[str, Any]
) -> Answers:
    """The forecast after a CSV's last rows, keyed by the last time it read (else its row count)."""
    table = read_table(Path(path))
    time = record["series"]["time"]
    last = table.values[time][-1] if time in table.columns else str(len(table))
    key = "after" if time in table.columns else "after_rows"
    return Answers(task, classes, [{key: last, task.answer_key(classes): answers[0]}], row_key=key)
