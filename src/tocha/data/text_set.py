"""Labelled text as a dataset: a CSV's text column (`--text COLUMN`, its target `--target COLUMN`),
or a folder of `.txt` files per class (`ROOT/<class>/*.txt`, or `ROOT/train/<class>/...` and
`ROOT/test/<class>/...`). Split (seeded, or as the files say), the validation carved from the
training texts, then the vocabulary built from the training texts alone (`data.text`), and every
split encoded as `(N, T)` int64 token ids, held as `(N, T, 1, 1)` and batched by index as images are.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.splits import carve, carve_rule, limited_draw
from tocha.data.table import RawTable, encoding_of, read_table, read_target
from tocha.data.table_encoder import TableEncoder, check_gaps
from tocha.data.table_set import column_stats
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.data.text import TextRecord
from tocha.data.text_datasets import is_text_dataset
from tocha.errors import TochaError
from tocha.models.registry import reads_text, text_models
from tocha.models.user_names import is_own
from tocha.tasks import make_task

MAX_FILE_BYTES = 10 << 20  # one .txt of a class folder: a document, not a corpus


def is_text(cfg: DataConfig) -> bool:
    """Whether the config's data is text: a CSV's `--text` column, or a folder of .txt files."""
    return (
        cfg.text is not None
        or cfg.task == "next-token"
        or is_text_dataset(cfg.name)
        or is_text_folder(Path(cfg.name).expanduser())
    )


def check_text_config(model: str, augment: bool, tta_flip: bool) -> None:
    """What text cannot take, said before it is read: image and table models, image augmentation."""
    if not reads_text(model) and not is_own(model):  # a user's model takes the ids (N, T)
        raise TochaError(
            f"model {model!r} does not read text; text trains with --model "
            f"{', '.join(text_models())}, or your own (it gets (N, T) int64 token ids)"
        )
    if augment or tta_flip:
        raise TochaError("flips, shifts and image augmentation are for images, not text")


def is_text_folder(path: Path) -> bool:
    """Whether `path` is a folder of classes holding `.txt` files (not images)."""
    if not path.is_dir():
        return False
    root = path / "train" if (path / "train").is_dir() else path
    first = (
        next((f for f in c.iterdir() if not f.name.startswith(".")), None)
        for c in root.iterdir()
        if c.is_dir()
    )
    return any(f is not None and f.suffix.lower() == ".txt" for f in first)  # a class's first file says


def read_text_file(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """A text file's contents: UTF-8 (or UTF-16 with its byte-order mark), as tables are read;
    anything else is refused naming the file and the first byte that is not."""
    data = path.read_bytes()
    if len(data) > limit:
        raise TochaError(f"{path}: {len(data):,} bytes is over the {limit:,} one text may have")
    try:
        return codecs.decode(data, encoding_of(data[:4]))
    except UnicodeDecodeError as e:
        raise TochaError(
            f"{path}: not UTF-8 text (byte {e.start} is {data[e.start]:#04x}): save it as UTF-8"
        ) from None


def folder_texts(root: Path) -> tuple[list[str], dict[str, tuple[list[str], list[int]]]]:
    """The class names and each split's (texts, class indices) of a folder of `.txt` files."""
    splits = {"train": root / "train", "test": root / "test"} if (root / "train").is_dir() else {"all": root}
    if "train" in splits and not splits["test"].is_dir():
        raise TochaError(f"{root}: a train/ folder needs a test/ folder beside it")
    classes = sorted(
        c.name for c in splits.get("train", root).iterdir() if c.is_dir() and not c.name.startswith(".")
    )
    if len(classes) < 2:
        raise TochaError(
            f"{root}: a text folder needs two or more class folders of .txt files; found {classes or 'none'}"
        )
    found: dict[str, tuple[list[str], list[int]]] = {}
    for split, folder in splits.items():
        texts, labels = [], []
        for label, name in enumerate(classes):
            files = sorted((folder / name).glob("*.txt")) if (folder / name).is_dir() else []
            if not files:
                raise TochaError(f"{folder / name}: no .txt files for class {name!r}")
            texts += [read_text_file(f) for f in files]
            labels += [label] * len(files)
        found[split] = (texts, labels)
    return classes, found


def load_text(cfg: DataConfig, name: str, log: Callable[[str], None] = print) -> LoadedData:
    """Labelled texts (a CSV's `cfg.text` column, or a folder of .txt files) split, with the
    vocabulary of the training texts, as token ids."""
    path = Path(name).expanduser()
    if path.is_dir():
        classes, found = folder_texts(path)
        task = make_task("classification")
        texts = sum((found[s][0] for s in found), [])
        values = np.array(sum((found[s][1] for s in found), []), dtype=np.int64)
        if "all" in found:
            train_idx, test_idx = seeded_split(len(texts), cfg.test_fraction, cfg.split_seed, path)
        else:
            n_train = len(found["train"][0])
            train_idx, test_idx = np.arange(n_train), np.arange(n_train, len(texts))
        column, source, beside = None, f"{path}: .txt files in {len(classes)} class folders", []
    else:
        if cfg.target is None:
            raise TochaError(
                f"{path}: which column is the label? Give --target COLUMN beside --text {cfg.text}"
            )
        table = read_table(path, cfg.decimal)
        if cfg.text not in table.columns:
            raise TochaError(
                f"{path}: no column {cfg.text!r} for --text; its columns: {', '.join(table.columns)}"
            )
        target = read_target(table, cfg.target, None if cfg.task == "auto" else cfg.task)
        task, classes, values = make_task(target.task), target.classes, target.values
        texts, column = table.values[cfg.text], cfg.text
        beside = columns_beside(table, cfg)
        train_idx, test_idx = seeded_split(len(texts), cfg.test_fraction, cfg.split_seed, path)
        source = f"{path}: text column {column!r}, target {cfg.target!r}: {task.name} ({target.why})"
    check_texts(texts, str(path) + (f" column {column!r}" if column else ""))
    val_idx, val_source = train_idx[:0], ""
    if cfg.train_limit is not None:  # drawn before the vocabulary too: the texts left out teach it nothing
        rounding = len(classes) if task.stratified and cfg.val_fraction > 0 else 1
        drawn = limited_draw(cfg.train_limit, cfg.val_fraction, len(train_idx), rounding, str(path))
        train_idx = np.sort(
            train_idx[np.random.default_rng(cfg.split_seed).permutation(len(train_idx))[:drawn]]
        )
    if cfg.val_fraction > 0:  # carved before the vocabulary: its texts teach it nothing
        inner, val_rows = carve(
            values[train_idx], cfg.val_fraction, cfg.val_seed, task.stratified, where=str(path), names=classes
        )
        train_idx, val_idx = train_idx[inner], train_idx[val_rows]
        val_source = carve_rule(cfg.val_fraction, cfg.val_seed, task.stratified)
    train_idx = train_idx[: cfg.train_limit]  # exactly the limit (the carve's rounding aside)
    record = TextRecord.fit((texts[i] for i in train_idx), cfg.tokens, cfg.max_vocab, cfg.max_length)
    ids, cut = record.encode(texts)
    if cut:
        log(
            f"{path.name}: {cut:,} of {len(texts):,} texts are longer than {cfg.max_length} {cfg.tokens}: "
            f"each is cut to its first {cfg.max_length} (--max-length)"
        )
    if unknown := int((ids[test_idx] == 1).sum()):
        log(
            f"{path.name}: {unknown:,} test tokens are not in the training texts' vocabulary: each reads as "
            "<unk>"
        )
    text = {**record.to_dict(), "column": column}
    details: dict[str, object] = {"rows": True, "as_given": True, "text": text}
    inputs = ids
    if beside:  # the table's other columns, encoded as a table's are, go first: (N, F + T) float32
        inputs, text["beside"], details["input_stats"] = with_columns(table, beside, cfg.fill, train_idx, ids)
        details.pop("as_given")
        source += f"; beside it {len(text['beside']['features'])} features from {', '.join(beside)}"
    return LoadedData(
        name=str(path),
        classes=classes,
        train=ids_set(inputs[train_idx], values[train_idx]),
        test=ids_set(inputs[test_idx], values[test_idx]),
        source=f"{source}; a vocabulary of {record.size:,} tokens ({cfg.tokens}), texts up to {ids.shape[1]}",
        details=details,
        task=task.name,
        val=ids_set(inputs[val_idx], values[val_idx]) if val_source else None,
        val_source=val_source,
    )


def columns_beside(table: RawTable, cfg: DataConfig) -> list[str]:
    """The columns a text run reads beside its text: every one but the text, the target and those
    `--drop`ped (each of which must exist), as a table run reads its columns."""
    unknown = [c for c in cfg.drop or [] if c not in table.columns]
    if unknown:
        raise TochaError(f"{table.path}: --drop {', '.join(unknown)}: no such column; its columns: "
                         f"{', '.join(table.columns)}")  # fmt: skip
    return [c for c in table.columns if c not in (cfg.text, cfg.target, *(cfg.drop or []))]


def with_columns(
    table: RawTable, columns: list[str], fill: str | None, train_idx: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, dict[str, Any], dict[str, list[float]]]:
    """The inputs of text read beside table columns: each row's encoded features (`TableEncoder`,
    fitted on the training rows: numbers, one-hot categories, gaps filled as `--fill` says), then
    its token ids as float32 (exact: ids are far below 2**24); the columns' record (how predict
    encodes new rows); and the normalisation (numbers standardised on the training rows, one-hot
    features and ids as they are)."""
    if fill == "drop-rows":  # the texts are split and their vocabulary built already
        raise TochaError(
            f"{table.path}: --fill drop-rows is for tables; beside a text, fill with mean or median"
        )
    if fill is None:
        check_gaps(table, columns, np.arange(len(table)))  # in every row, test rows included
    encoder = TableEncoder.fit(table, columns, train_idx, fill)
    x, _ = encoder.transform(table)
    mean, std = column_stats(torch.from_numpy(x[train_idx])[:, :, None, None], len(encoder.numeric))
    record = {"encoder": encoder.to_dict(), "features": encoder.feature_names, "fill": fill}
    stats = {"mean": [*mean, *[0.0] * ids.shape[1]], "std": [*std, *[1.0] * ids.shape[1]]}
    return np.concatenate([x, ids.astype(np.float32)], axis=1), record, stats


def check_texts(texts: list[str], where: str) -> None:
    """Texts a model can learn from: not all empty, not all the same."""
    if not any(t.strip() for t in texts):
        raise TochaError(f"{where}: every text is empty")
    if len(set(texts)) == 1:
        raise TochaError(f"{where}: every text is the same ({texts[0][:40]!r}): nothing to learn from it")


def seeded_split(n: int, test_fraction: float, seed: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random `test_fraction` of the texts for testing, both parts in file order."""
    n_test = round(n * test_fraction)
    if n_test < 1 or n_test >= n:
        raise TochaError(f"{path}: {n} texts cannot be split with test fraction {test_fraction}")
    shuffled = np.random.default_rng(seed).permutation(n)
    return np.sort(shuffled[n_test:]), np.sort(shuffled[:n_test])


def ids_set(ids: np.ndarray, values: np.ndarray) -> TensorSet:
    """Token ids (N, T) held as (N, T, 1, 1), beside their targets."""
    return TensorSet(torch.from_numpy(np.ascontiguousarray(ids))[:, :, None, None], torch.from_numpy(values))
