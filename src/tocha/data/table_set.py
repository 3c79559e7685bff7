"""A table as a dataset: read, split, encode with the training rows' statistics, and hand over as
float32 rows (N, F, 1, 1) in a `LoadedData`, batched by index exactly like images.

The split is seeded (`test_fraction`, `split_seed`), or given as files: `train.csv` with a
`test.csv` beside it. The encoding (`TableEncoder`) travels in the checkpoint, so `tocha predict`
encodes a CSV's rows exactly as training did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.checksum import file_md5
from tocha.data.normalize import channel_stats
from tocha.data.prepared import is_prepared, load_prepared, read_manifest
from tocha.data.splits import carve, carve_rule, limited_draw
from tocha.data.table import RawTable, choose_task, read_table, read_target, rows_with_gaps
from tocha.data.table_encoder import TableEncoder, check_gaps
from tocha.data.tables import LINEAR_BIAS, LINEAR_NOISE, SYNTHETIC, TABLES, declared_task, table_file
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import ChecksumError, TochaError
from tocha.models.user_names import is_own
from tocha.tasks import RegressionTask, Task, make_task

SYNTHETIC_FEATURES = 10


def load_table(cfg: DataConfig, name: str, log: Callable[[str], None] = print) -> LoadedData:
    """The table `name` (registered, synthetic, or a file) as the config says: target, task, columns
    left out, missing values, split. (Over 50 lines on purpose: read, target, columns, gaps, split
    and encoding are one pass over the same table, in the order each needs the one before.)"""
    if not cfg.standardize:  # read as ever, then taken as it is: no scale on the columns nor the target
        return unstandardized(load_table(dataclasses.replace(cfg, standardize=True), name, log))
    if name in SYNTHETIC:
        return synthetic(name, cfg.split_seed, cfg.val_fraction, cfg.val_seed)
    if is_prepared(name):
        return prepared_table(cfg, Path(name).expanduser(), log)
    spec = TABLES.get(name)
    path = table_file(spec, cfg.data_dir) if spec else Path(name).expanduser()
    if spec and (actual := file_md5(path)) != spec.md5:
        raise ChecksumError(f"{path}: md5 {actual}, expected {spec.md5}: not the registered {spec.name} "
                            "table, and not used")  # fmt: skip
    table = read_table(path, cfg.decimal)
    test_path = file_beside(path, "test")
    val_path = file_beside(path, "val") if test_path is not None else None
    origin = np.zeros(len(table), dtype=np.int8)  # each row's file: TRAIN, VAL or TEST
    for part, other in ((VAL, val_path), (TEST, test_path)):
        if other is not None:
            table = joined(table, read_table(other, table.decimal))
            origin = np.concatenate([origin, np.full(len(table) - len(origin), part, dtype=np.int8)])
    target_name = cfg.target or (spec.target if spec else None)
    if target_name is None:
        raise TochaError(f"{path}: which column is the target? Give --target COLUMN; its columns: "
                         f"{', '.join(table.columns)}")  # fmt: skip
    declared = declared_task(name, cfg.task, cfg.target)
    table, origin = with_targets(table, target_name, declared, origin, fill=cfg.fill, log=log)
    target = read_target(table, target_name, declared)
    task = make_task(target.task)
    if spec and cfg.task == "auto" and not cfg.target:
        target.why = f"registered as {task.name}"
    features = feature_columns(table, target_name, cfg.drop or [])
    keep = np.arange(len(table))
    if cfg.fill == "drop-rows":
        gaps = rows_with_gaps(table, features)
        keep = keep[~gaps]
        if gaps.any():
            log(f"{path.name}: dropped {int(gaps.sum())} rows with missing values (--fill drop-rows)")
    elif cfg.fill is None:
        check_gaps(table, features, keep)  # in every row used, test rows included
    if test_path is not None:
        train_idx, val_idx, test_idx = (keep[origin[keep] == part] for part in (TRAIN, VAL, TEST))
    else:
        (train_idx, test_idx), val_idx = seeded_split(keep, cfg.test_fraction, cfg.split_seed, path), keep[:0]
    val_source = f"{val_path.name}" if val_path is not None else ""
    if (
        val_path is None and cfg.val_fraction > 0
    ):  # carved before encoding: its rows teach the encoder nothing
        if cfg.train_limit is not None:  # the validation carved in proportion to the rows the limit keeps
            drawn = limited_draw(cfg.train_limit, cfg.val_fraction, len(train_idx),
                                 len(target.classes) if task.stratified else 1, str(path))  # fmt: skip
            pick = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(train_idx))[:drawn])
            train_idx = train_idx[pick]
        inner, val_rows = carve(target.values[train_idx], cfg.val_fraction, cfg.val_seed, task.stratified,
                                where=str(path), names=target.classes)  # fmt: skip
        train_idx, val_idx = train_idx[inner], train_idx[val_rows]
        val_source = carve_rule(cfg.val_fraction, cfg.val_seed, task.stratified)
    encoder = TableEncoder.fit(table, features, train_idx, None if cfg.fill == "drop-rows" else cfg.fill)
    x, _ = encoder.transform(table)  # gaps were filled as asked and unseen categories are counted below
    if unseen := encoder.count_unseen(x[test_idx]):
        log(f"{path.name}: {unseen} test values of text columns have categories not seen in training: "
            "their one-hot blocks are all zeros")  # fmt: skip
    shown = path.name if spec and spec.shipped else str(path)
    also = "".join(f" + {p.name}" for p in (val_path, test_path) if p is not None)
    source = (f"{shown}{also}: {x.shape[1]} features from {len(features)} columns, target {target_name}: "
              f"{task.name} ({target.why})")  # fmt: skip
    return LoadedData(
        name=spec.name if spec else str(path),
        classes=target.classes,
        train=rows_set(x[train_idx], target.values[train_idx]),
        test=rows_set(x[test_idx], target.values[test_idx]),
        source=source,
        details={"features": encoder.feature_names},
        task=task.name,
        table=table_info(
            encoder, target_name, task, cfg.fill, train_targets=target.values[train_idx], dropped=cfg.drop
        ),
        val=rows_set(x[val_idx], target.values[val_idx]) if val_source else None,
        val_source=val_source,
    )


def prepared_table(cfg: DataConfig, path: Path, log: Callable[[str], None]) -> LoadedData:
    """A table prepared by `tocha data prepare` (`data.prepare_table`): its target, encoding and
    splits were fixed then; an option that would change them is refused rather than ignored (its
    validation rows are used as they are, or left out with a validation fraction of 0)."""
    manifest = read_manifest(path)
    prepared = {**manifest.get("options", {}), "task": manifest.get("task")}
    asked = {
        "target": cfg.target,
        "task": None if cfg.task == "auto" else cfg.task,
        "drop": cfg.drop or None,
        "fill": cfg.fill,
    }  # its validation rows are used as they are (as a val.csv is), or none with 0
    other = [f"{k} {v}" for k, v in asked.items() if v not in (None, prepared.get(k))]
    if other:
        raise TochaError(f"{path} was prepared with {', '.join(f'{k} {prepared.get(k)}' for k in asked)}; "
                         f"{', '.join(other)} would change it: prepare it again with those")  # fmt: skip
    data = load_prepared(path, log=log, in_memory=cfg.in_memory)
    return data if cfg.val_fraction else dataclasses.replace(data, val=None, val_source="")  # none asked for


def with_targets(table: RawTable, target: str, declared: str | None, origin: np.ndarray, *, fill: str | None,
                 log: Callable[[str], None]) -> tuple[RawTable, np.ndarray]:  # fmt: skip
    """The table without the rows whose target is missing, under any `--fill` (nobody can impute a
    target), said with their count; and the file each row left came from (`origin`, taken alike)."""
    missing = choose_task(table, target, declared)[2]
    if not missing.any() or fill is None:
        return table, origin  # without a fill, `read_target` names them
    kept = np.flatnonzero(~missing)
    log(f"{table.path.name}: left out {int(missing.sum())} rows whose target {target!r} is missing")
    return table.take(kept), origin[kept]


def unstandardized(data: LoadedData) -> LoadedData:
    """A table whose columns reach the model as they are (`--no-standardize`: mean 0, std 1 for its
    normalisation) and whose regression target is learnt in its own units (scale 0, 1)."""
    table = dict(data.table or {})
    if "target_scale" in table:
        table["target_scale"] = [0.0, 1.0]
    return dataclasses.replace(data, table=table, details={**data.details, "as_given": True})


def table_info(encoder: TableEncoder, target: str, task: Task, fill: str | None, *, train_targets: np.ndarray,
               dropped: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """What a checkpoint keeps of a table: how to encode new rows, what they predict, the columns
    left out (an ID names predict's rows), and what the task keeps of the training targets (a
    regression: their mean and std, the scale it learns on)."""
    return {"target": target, "task": task.name, "fill": fill, "encoder": encoder.to_dict(),
            "features": encoder.feature_names, "dropped": list(dropped or []),
            **task.table_info(train_targets)}  # fmt: skip


def rows_set(x: np.ndarray, y: np.ndarray) -> TensorSet:
    """(N, F) features as (N, F, 1, 1): one feature per channel."""
    return TensorSet(torch.from_numpy(np.ascontiguousarray(x))[:, :, None, None], torch.from_numpy(y))


TRAIN, VAL, TEST = 0, 1, 2  # which file a row came from


def file_beside(path: Path, part: str) -> Path | None:
    """`test.csv` (or `val.csv`) beside a file named `train.csv` (same suffixes), if there is one."""
    name = path.name
    if not name.lower().startswith("train."):
        return None
    other = path.with_name(part + name[len("train") :])
    return other if other.is_file() else None


def joined(train: RawTable, test: RawTable) -> RawTable:
    """The train file's rows, then the test file's: one table, so both are encoded alike."""
    if train.columns != test.columns:
        raise TochaError(f"{test.path}: its columns ({', '.join(test.columns)}) are not those of "
                         f"{train.path.name} ({', '.join(train.columns)})")  # fmt: skip
    values = {c: train.values[c] + test.values[c] for c in train.columns}
    return RawTable(train.path, train.columns, values)


def feature_columns(table: RawTable, target: str, drop: list[str]) -> list[str]:
    """Every column but the target and those dropped (each of which must exist)."""
    unknown = [c for c in drop if c not in table.columns]
    if unknown:
        raise TochaError(f"{table.path}: --drop {', '.join(unknown)}: no such column; its columns: "
                         f"{', '.join(table.columns)}")  # fmt: skip
    features = [c for c in table.columns if c != target and c not in drop]
    if not features:
        raise TochaError(f"{table.path}: no feature columns left besides the target {target!r}")
    return features


def seeded_split(rows: np.ndarray, test_fraction: float, seed: int, path: Path) -> tuple[np.ndarray, ...]:
    """A seeded random `test_fraction` of the rows for testing, both parts kept in file order."""
    n_test = round(len(rows) * test_fraction)
    if n_test < 1 or n_test >= len(rows):
        raise TochaError(f"{path}: {len(rows)} rows cannot be split with test fraction {test_fraction}")
    shuffled = np.random.default_rng(seed).permutation(rows)
    return np.sort(shuffled[n_test:]), np.sort(shuffled[:n_test])


def synthetic(name: str, seed: int, val_fraction: float = 0.0, val_seed: int = 0) -> LoadedData:
    """The notes' random data (train rows drawn first: `torch.manual_seed(seed); X = torch.randn(100,
    10); y = torch.randn(100, 1)` gives the same), or data with a known linear truth; the validation
    rows carved from the training rows."""
    g = torch.Generator().manual_seed(seed)
    f = SYNTHETIC_FEATURES
    if name == "synthetic-regression":
        x_train, y_train = torch.randn(100, f, generator=g), torch.randn(100, 1, generator=g)
        x_test, y_test = torch.randn(100, f, generator=g), torch.randn(100, 1, generator=g)
    else:
        x = torch.randn(1200, f, generator=g)
        y = x @ linear_truth()[:, None] + LINEAR_BIAS + LINEAR_NOISE * torch.randn(1200, 1, generator=g)
        x_train, y_train, x_test, y_test = x[:1000], y[:1000], x[1000:], y[1000:]
    columns = [f"x{i}" for i in range(f)]
    encoder = TableEncoder(numeric=columns, fill={c: 0.0 for c in columns})
    x, y = x_train.numpy(), y_train[:, 0].numpy()
    train_rows, val_rows = np.arange(len(y)), None
    if val_fraction > 0:
        train_rows, val_rows = carve(y, val_fraction, val_seed, False, where=name)
    return LoadedData(
        name=name,
        classes=["y"],
        train=rows_set(x[train_rows], y[train_rows]),
        test=rows_set(x_test.numpy(), y_test[:, 0].numpy()),
        source=f"generated: {SYNTHETIC[name]} (seed {seed})",
        details={"features": columns},
        task=RegressionTask.name,
        table=table_info(encoder, "y", make_task(RegressionTask.name), None, train_targets=y[train_rows]),
        val=rows_set(x[val_rows], y[val_rows]) if val_rows is not None else None,
        val_source=carve_rule(val_fraction, val_seed, False) if val_rows is not None else "",
    )


def linear_truth() -> torch.Tensor:
    """synthetic-linear's weights: linspace(-1, 1, 10)."""
    return torch.linspace(-1, 1, SYNTHETIC_FEATURES)


TABLE_MODELS = ("linear", "mlp")


def check_table_config(model: str, augment: bool, tta_flip: bool) -> None:
    """What a table cannot take, said before it is read: image models, image augmentation."""
    if model not in TABLE_MODELS and not is_own(model):  # a user's model takes the rows (N, F)
        raise TochaError(f"model {model!r} needs images; a table trains with --model linear or mlp")
    if augment or tta_flip:
        raise TochaError(
            "flips and shifts (augment_flip, augment_translate, tta_flip) are for images, not tables"
        )


def feature_stats(data: LoadedData) -> tuple[list[float], list[float]]:
    """The normalisation of a table's rows: numeric columns standardised with the training rows'
    mean and std; one-hot columns (an unseen category stays all zeros) and constants left as they are."""
    numeric = len(data.table["encoder"]["numeric"]) if data.table else 0  # type: ignore[index]
    return column_stats(data.train.images, numeric)


def column_stats(rows: torch.Tensor, numeric: int) -> tuple[list[float], list[float]]:
    """The normalisation of encoded rows (N, F, 1, 1) whose first `numeric` features are numbers:
    those standardised with these rows' mean and std; one-hot columns and constants left as they are
    (a table's rows, and the columns a text run reads beside its text)."""
    mean, std = channel_stats(rows, scale=1.0)
    kept = [i >= numeric or s < 1e-8 for i, s in enumerate(std)]
    return [0.0 if k else m for k, m in zip(kept, mean, strict=True)], [
        1.0 if k else s for k, s in zip(kept, std, strict=True)
    ]
