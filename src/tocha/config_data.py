"""The `data` section of a run's config: which data, how it is read, split, normalised and augmented.

Each field is declared once with its help text and checks (`config_fields.option`); the flags,
`--vary` keys and validation are derived from these declarations (`tocha.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tocha.config_fields import (
    CODE_RECORD,
    MAX_SIDE,
    SEED_LIMIT,
    Freezable,
    arguments_option,
    at_least,
    code_file_option,
    in_range,
    numbers_within,
    option,
    recorded_option,
)


@dataclass
class DataConfig(Freezable):
    name: str = option(
        "auto",
        "dataset name (tocha data list), image folder, table (.csv, .tsv), or your own: "
        "FILE.py:NAME, NAME a Dataset, tensors (X, y), a pair or mapping of splits, or a function "
        "or class returning one; default auto",
        flag="--data",
        metavar="NAME_OR_FOLDER",
    )
    # Your own data named by a file, `--data FILE.py:NAME` (`tocha.data.code`): its arguments, the
    # file it is read from, and the record of it (as your own model's, `models.code_trust`).
    args: dict[str, Any] | None = arguments_option(
        "an argument of the function or class --data FILE.py:NAME names, as YAML (repeatable)", "--data-arg"
    )
    file: str | None = code_file_option("data", "--data-file", "--data", "--resume, evaluate, export")
    file_sha256: str | None = recorded_option(CODE_RECORD["file_sha256"], "--data-file-sha256")
    sources: list[str] | None = recorded_option(CODE_RECORD["sources"], "--data-sources")
    signature: str | None = recorded_option(CODE_RECORD["signature"], "--data-signature")
    stream: bool = option(
        False,
        "your own Dataset: read its training split again every epoch, each item under a seed of "
        "its own (for random transforms in __getitem__; default: read once)",
    )
    workers: int = option(
        0,
        "your own Dataset: processes that read its items (default 0: this one)",
        metavar="N",
        check=in_range(0, 64),
    )
    data_dir: str | None = option(None, "folder holding <dataset>/ folders", metavar="DIR")
    download: bool = option(
        True, "fail instead of downloading missing data", flag="--no-download", cli="negate"
    )
    image_size: list[int] | None = option(
        None,
        "resize image-folder images (default: the most common size)",
        metavar="HxW",
        cli="size",
        check=(
            lambda v: len(v) == 2 and all(1 <= x <= MAX_SIDE for x in v),
            f"must be HxW, each 1 to {MAX_SIDE}",
        ),
    )
    test_fraction: float = option(
        0.2, "held-out share of an image folder without train/test", check=in_range(0, 1, closed_low=False)
    )
    split_seed: int = option(0, "seed of that split", check=in_range(0, SEED_LIMIT))
    val_fraction: float = option(
        0.1,
        "validation share carved from the training split, stratified by class (every choice is "
        "made on it; 0: none, the course's two-way split); a val/ folder or val.csv is used as it is",
        check=in_range(0, 1),
    )
    val_seed: int = option(0, "seed of the validation carve", check=in_range(0, SEED_LIMIT))
    on_bad_image: str = option(
        "fail", "unreadable image-folder files: stop (default) or leave out", choices=("fail", "skip")
    )
    follow_symlinks: bool = option(False, "image folders: also read links that lead out of the folder")
    in_memory: str = option(
        "auto",
        "a prepared folder's training images: in memory (yes), read from disk a "
        "batch at a time (no), or auto: in memory when they take under half the "
        "available memory",
        choices=("auto", "yes", "no"),
    )
    mean: list[float] | None = option(
        None,
        "per-channel mean (0..1 scale); default: training-set statistics",
        check=numbers_within(-1e6, 1e6),
    )
    std: list[float] | None = option(
        None,
        "per-channel standard deviation; default: training-set statistics",
        check=numbers_within(1e-6, 1e6),
    )
    train_limit: int | None = option(
        None,
        "train on a random N of the training samples (seeded by split_seed), the validation split "
        "carved in proportion to them (val_fraction of the N + its share); default all",
        metavar="N",
        check=at_least(1),
    )
    target: str | None = option(None, "tables: the column to predict", metavar="COLUMN")
    task: str = option(
        "auto",
        "tables: auto (from the target's values), regression, classification, or a "
        "task registered with tocha.tasks.register_task",
        metavar="TASK",
    )
    standardize: bool = option(
        True,
        "tables: standardise the numeric columns and a regression's target with the training rows' "
        "mean and std (default); --no-standardize takes them as they are, so a linear model's "
        "weights read in the columns' own units",
    )
    decimal: str = option(
        "auto",
        "tables: the decimal mark; auto: a comma in a ;-separated file "
        "that writes its decimals with commas, else a point",
        choices=("auto", ".", ","),
    )
    drop: list[str] | None = option(None, "tables: columns to leave out (IDs)", metavar="COL,COL")
    text: str | None = option(
        None, "text: the CSV column holding each row's text (its label: --target)", metavar="COLUMN"
    )
    tokens: str = option(
        "chars",
        "text: chars (every character a token) or words (lower case, words and punctuation marks)",
        choices=("chars", "words"),
    )
    max_vocab: int | None = option(
        None,
        "text: keep the N most frequent training tokens (the rest read as <unk>); default all",
        metavar="N",
        check=at_least(1),
    )
    window: int = option(
        24, "forecast: the rows each forecast reads (the time up to now)", metavar="W", check=at_least(1)
    )
    horizon: int = option(
        1, "forecast: the values forecast after each window", metavar="H", check=at_least(1)
    )
    season: int | None = option(
        None,
        "forecast: the season's length in rows (52 for weekly data's year), for the seasonal_naive baseline",
        metavar="S",
        check=at_least(1),
    )
    sort_by: str | None = option(
        None,
        "forecast: sort the rows by this time column (else rows out of order are refused)",
        metavar="COLUMN",
    )
    context: int = option(
        128,
        "next-token: the tokens each window reads (and a prompt's last tokens when generating)",
        metavar="N",
        check=at_least(1),
    )
    max_length: int = option(
        256,
        "text: the tokens kept of each text (its first N; the cut is said)",
        metavar="N",
        check=at_least(1),
    )
    fill: str | None = option(
        None,
        "tables: missing values take the column's mean or median, or their rows are dropped",
        choices=("mean", "median", "drop-rows"),
    )
    augment_flip: bool = option(False, "random horizontal flips (on the device, training only)")
    augment: str = option(
        "none",
        "more augmentation on the device, joined with +: crop (random resized "
        "crop), erase (random erasing), mixup, cutmix (these two mix labels: loss "
        "cross_entropy)",
        metavar="NAME+NAME",
    )
    augment_translate: int = option(
        0,
        "random shifts of up to this many pixels",
        metavar="PIXELS",
        check=(lambda v: v >= 0, "must be >= 0"),
    )
