"""Typed run configuration: dataclasses for data / model / training, YAML in and out.

Each field is declared once, with its help text and the checks its values must pass; the
command-line flags (`tocha.cli`), `tocha compare --vary` keys and `validate` are all derived from
these declarations. A run's resolved config (every default filled in) is written to its run
folder and stored in each checkpoint, so `evaluate` and `predict` rebuild model and
preprocessing from it.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tocha.config_fields import (
    MAX_CONFIG_BYTES,
    MAX_SIDE,
    SEED_LIMIT,
    Freezable,
    Option,
    at_least,
    brief,
    check_type,
    in_range,
    numbers_within,
    option,
    options_of,
    read_yaml,
    threads_of_this_machine,
    write_yaml,
)
from tocha.errors import TochaError
from tocha.files import regular_file


@dataclass
class DataConfig(Freezable):
    name: str = option(
        "auto",
        "dataset name (tocha data list), image folder or table (.csv, .tsv); default auto",
        flag="--data",
        metavar="NAME_OR_FOLDER",
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
        0.1, "validation share carved from the training split, stratified by class (every choice is "
        "made on it; 0: none, the course's two-way split); a val/ folder or val.csv is used as it is",
        check=in_range(0, 1))  # fmt: skip
    val_seed: int = option(0, "seed of the validation carve", check=in_range(0, SEED_LIMIT))
    on_bad_image: str = option(
        "fail", "unreadable image-folder files: stop (default) or leave out", choices=("fail", "skip")
    )
    follow_symlinks: bool = option(False, "image folders: also read links that lead out of the folder")
    in_memory: str = option("auto", "a prepared folder's training images: in memory (yes), read from disk a "
                            "batch at a time (no), or auto: in memory when they take under half the "
                            "available memory", choices=("auto", "yes", "no"))  # fmt: skip
    mean: list[float] | None = option(None, "per-channel mean (0..1 scale); default: training-set statistics",
                                      check=numbers_within(-1e6, 1e6))  # fmt: skip
    std: list[float] | None = option(None, "per-channel standard deviation; default: training-set statistics",
                                     check=numbers_within(1e-6, 1e6))  # fmt: skip
    train_limit: int | None = option(
        None, "train on a random N of the training images (seeded by split_seed); default all",
        metavar="N", check=at_least(1))  # fmt: skip
    target: str | None = option(None, "tables: the column to predict", metavar="COLUMN")
    task: str = option("auto", "tables: auto (from the target's values), regression, classification, or a "
                       "task registered with tocha.tasks.register_task", metavar="TASK")  # fmt: skip
    decimal: str = option("auto", "tables: the decimal mark; auto: a comma in a ;-separated file "
                          "that writes its decimals with commas, else a point",
                          choices=("auto", ".", ","))  # fmt: skip
    drop: list[str] | None = option(None, "tables: columns to leave out (IDs)", metavar="COL,COL")
    fill: str | None = option(None, "tables: missing values take the column's mean or median, or "
                              "their rows are dropped", choices=("mean", "median", "drop-rows"))  # fmt: skip
    augment_flip: bool = option(False, "random horizontal flips (on the device, training only)")
    augment: str = option("none", "more augmentation on the device, joined with +: crop (random resized "
                          "crop), erase (random erasing), mixup, cutmix (these two mix labels: loss "
                          "cross_entropy)", metavar="NAME+NAME")  # fmt: skip
    augment_translate: int = option(0, "random shifts of up to this many pixels", metavar="PIXELS",
                                    check=(lambda v: v >= 0, "must be >= 0"))  # fmt: skip


@dataclass
class ModelConfig(Freezable):
    """The model and its options. Where a run's config stores them: each model declares the options
    it takes, with their help and checks, beside its factory (`tocha.models`), and the flags come
    from those declarations; a test holds these fields and the declarations together."""

    name: str = option("auto", "a model of tocha's (tocha models; default auto: tinyvgg, or mlp for a "
                       "table), or your own: FILE.py:NAME or package.module:NAME, NAME a class or a "
                       "function returning an nn.Module", flag="--model", metavar="MODEL")  # fmt: skip
    hidden_units: int | None = None
    hidden_sizes: list[int] | None = None
    widths: list[int] | None = None
    activation: str | None = None
    log_softmax: bool | None = None
    # Your own model (`tocha.models.user`): its constructor's arguments, and the file it was read from.
    args: dict[str, Any] | None = option(None, "your model's constructor argument, as YAML (repeatable): "
                                         "--model-arg hidden_units=10", flag="--model-arg",
                                         metavar="NAME=VALUE", cli="pairs")  # fmt: skip
    file: str | None = option(None, "the file your model's code is read from (default: the one --model "
                              "names; --resume, evaluate, predict, export, serve: the one recorded, "
                              "unchanged); naming it trusts it even when it changed",
                              flag="--model-file", metavar="FILE.py")  # fmt: skip
    file_sha256: str | None = option(None, "the SHA-256 of that file (recorded by tocha)", cli="recorded")
    sources: list[str] | None = option(None, "the other files of yours its import loads, as `SHA256  PATH` "
                                       "(recorded by tocha)", cli="recorded")  # fmt: skip
    signature: str | None = option(None, "this user's signature of the record, made when the code was "
                                   "named (recorded by tocha; `tocha.models.code_trust`)",
                                   cli="recorded")  # fmt: skip
    flatten: bool | None = option(None, "give your model each image flattened, (N, C*H*W), as the "
                                  "notes' images.view(N, -1) does (default: when its forward takes "
                                  "only that)")  # fmt: skip


@dataclass
class TrainConfig(Freezable):
    epochs: int = option(2, "passes over the training set", check=at_least(1))
    batch_size: int = option(
        64, "training batch (with several processes: the global batch)", check=at_least(1)
    )
    eval_batch_size: int = option(1000, "evaluation batches", check=at_least(1))
    accumulate: int = option(1, "gradient accumulation: each step's batch is batch_size x N, its gradient "
                             "summed over N parts of batch_size (a batch N times what fits in memory)",
                             metavar="N", check=at_least(1))  # fmt: skip
    clip_grad_norm: float | None = option(None, "cut the gradient's norm to this before each step (the "
                                          "norms' mean and max per epoch go into metrics.csv)", metavar="X",
                                          check=(lambda v: v > 0, "must be > 0"))  # fmt: skip
    optimizer: str = option("adam", "sgd, adam, adamw")
    lr: float = option(0.001, "learning rate", check=(lambda v: v > 0, "must be positive"))
    momentum: float = option(0.0, "sgd momentum (0, as torch.optim.SGD)", check=in_range(0, 1))
    nesterov: bool = option(False, "sgd: Nesterov momentum")
    weight_decay: float | None = option(
        None,
        "L2 penalty (decoupled with adamw); default the optimizer's own, as in torch.optim: 0 (adamw 0.01)",
        check=(lambda v: v is None or v >= 0, "must be >= 0"),
    )
    loss: str = option(
        "auto",
        "auto (cross_entropy; tables' regression: mse); classification: "
        "cross_entropy, nll (with the log-softmax head), mse; regression: mse, l1, huber",
    )
    label_smoothing: float = option(0.0, "cross_entropy only", check=in_range(0, 1))
    class_weights: str | None = option(None, "weigh each class in the loss: balanced (N / (classes x "
                                       "count)) or W,W,... one per class; recorded as the numbers",
                                       metavar="balanced|W,W,...")  # fmt: skip
    seed: int = option(
        0, "seed of initialisation, batch order and augmentation", check=in_range(0, SEED_LIMIT)
    )
    shuffle: str = option("full", "the batch order: full (a permutation of every sample) or blocks (runs "
                          "of 64 consecutive samples in a random order, mixed within windows of 16 runs: "
                          "longer reads for data read from a slow disk)",
                          choices=("full", "blocks"))  # fmt: skip
    device: str = option("auto", "auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps")
    threads: int | None = option(None, "CPU threads (at most 4 per core); default: one per idle "
                                 "core, counted at the start", metavar="N",
                                 check=threads_of_this_machine())  # fmt: skip
    schedule: str = option("constant", "constant, onecycle, linear, cosine (stepped per batch), plateau "
                           "(ReduceLROnPlateau on the monitored validation metric, per epoch)")  # fmt: skip
    plateau_factor: float = option(0.1, "plateau: the learning rate's factor at each reduction",
                                   check=(lambda v: 0 < v < 1, "must be in (0, 1)"))  # fmt: skip
    plateau_patience: int = option(2, "plateau: epochs without improvement before a reduction",
                                   check=at_least(0))  # fmt: skip
    warmup_fraction: float = option(
        0.25, "onecycle: share of the steps spent warming up", check=in_range(0, 1)
    )
    precision: str = option(
        "auto",
        "auto (bf16 on a CUDA GPU that has it, else fp32), fp32, bf16",
        choices=("auto", "fp32", "bf16"),
    )
    channels_last: bool | None = option(None, "NHWC layout; default: on for CNNs on CUDA and CPU")
    compile: bool = option(False, "torch.compile the model")
    sync_batchnorm: bool = option(False, "several processes: batch-norm statistics over the global batch")
    collective_timeout: float = option(
        600.0, "several processes: seconds a process waits for the others in a collective before the run "
        "fails naming the silent one", metavar="SECONDS",
        check=(lambda v: 1 <= v <= 86400, "must be 1 to 86400"))  # fmt: skip
    keep: str = option("auto", "the weights a run keeps for evaluate, predict, export, serve: best (the "
                       "epoch with the best monitored validation metric), last; auto: best with a "
                       "validation split, else last", choices=("auto", "best", "last"))  # fmt: skip
    monitor: str = option("auto", "the validation metric choices are made on: val_loss, val_accuracy, "
                          "val_r2...; auto: the task's primary one", metavar="VAL_METRIC")  # fmt: skip
    early_stop: int | None = option(None, "stop when the monitored validation metric has not improved for "
                                    "PATIENCE epochs", metavar="PATIENCE", check=at_least(1))  # fmt: skip
    min_delta: float = option(0.0, "the least change that counts as an improvement (early stop, best)",
                              check=(lambda v: v >= 0, "must be >= 0"))  # fmt: skip
    test_every_epoch: bool = option(False, "also score the test split after every epoch, for the course's "
                                    "curve (drawn and logged as not used for any choice)")  # fmt: skip
    ema_decay: float | None = option(
        None, "evaluate a moving average of the weights", check=(lambda v: 0 < v < 1, "must be in (0, 1)")
    )
    log_every: int = option(1, "print every N-th epoch's line (and the last)", metavar="N",
                            check=at_least(1))  # fmt: skip
    fast_dev_run: bool = option(
        False,
        "one training step, one validation batch, one test batch, "
        "and nothing written: a first check that the pieces fit (as Lightning's)",
    )
    overfit_batches: int | None = option(None, "train on the same N batches every epoch, in the same "
                                         "order, and validate on them: a learner's first check that the "
                                         "model can fit (as Lightning's)", metavar="N",
                                         check=at_least(1))  # fmt: skip
    log: str = option("none", "tensorboard: also write TensorBoard event files into the run folder's tb/ "
                      "(pip install 'tocha[tensorboard]')", choices=("none", "tensorboard"))  # fmt: skip
    tta_flip: bool = option(False, "evaluate/predict: average the outputs of each image and its mirror")
    init_from: str | None = option(
        None, "start from trained weights: a run folder, checkpoint or .safetensors export (fine-tuning)",
        metavar="RUN_OR_FILE")  # fmt: skip
    init_from_sha256: str | None = option(None, "checksum of the init_from weights (recorded by tocha)",
                                          metavar="HEX")  # fmt: skip
    freeze: str = option("none", "backbone: train the classifier only", choices=("none", "backbone"))
    freeze_epochs: int | None = option(
        None, "with --freeze backbone: unfreeze everything after N epochs (default: stay frozen)",
        metavar="N", check=at_least(1))  # fmt: skip
    backbone_lr_mult: float = option(
        0.1, "after unfreezing, the backbone's learning rate as a share of --lr",
        check=(lambda v: v > 0, "must be positive"))  # fmt: skip


@dataclass
class RunConfig(Freezable):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = option("runs", "parent folder of run folders (default runs)", flag="--out", metavar="DIR")
    run_name: str | None = option(None, "run folder name (default: time-dataset-model)", flag="--name")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def options() -> list[Option]:
    """Every config key with its type, help, flag and checks: the one source of option names."""
    nested = [opt for name, cls in SECTIONS.items() for opt in options_of(cls, f"{name}.")]
    return nested + options_of(RunConfig, "", skip=tuple(SECTIONS))


def config_keys() -> list[str]:
    """Every key of a RunConfig, dotted: `data.name`, ..., `out_dir`, `run_name`."""
    return [opt.key for opt in options()]


# Short names a keyword or `--vary` may use for a config key (`tocha.train(model="mlp")`).
ALIASES = {
    "model": "model.name",
    "data": "data.name",
    "dataset": "data.name",
    "seed": "train.seed",
    "model_args": "model.args",
    "model_file": "model.file",
}


MODEL_ARG = "model.args."  # `model.args.NAME`: one argument of your own model's constructor


def resolve_key(name: str) -> str:
    """`activation` -> `model.activation`, `batch-size` -> `train.batch_size`, `model-arg.hidden` (or
    `args.hidden`) -> `model.args.hidden`, one argument of your model's; dotted keys as given."""
    name = name.strip().replace("-", "_")
    if name in ALIASES:
        return ALIASES[name]
    for prefix in ("model_arg.", "args.", MODEL_ARG):
        if name.startswith(prefix):
            argument = name.removeprefix(prefix)
            if not argument.isidentifier():
                raise TochaError(f"unknown option {name!r}: model-arg.NAME takes an argument's name")
            return MODEL_ARG + argument
    if "." in name or name in config_keys():  # dotted, or a top-level key (out_dir, run_name)
        return name
    matches = [key for key in config_keys() if key.endswith(f".{name}")]
    if len(matches) != 1:
        raise TochaError(f"unknown option {name!r} (use a config key such as train.lr or activation)")
    return matches[0]


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def set_value(config: RunConfig, dotted: str, value: Any) -> None:
    """Set `section.key` (or a top-level key, or `model.args.NAME`) after checking the key exists
    and the type fits."""
    if dotted.startswith(MODEL_ARG):  # one argument among the others your model is given
        name = dotted.removeprefix(MODEL_ARG)
        config.model.args = check_type(
            "model.args", {**(config.model.args or {}), name: value}, _hints(ModelConfig)["args"]
        )
        return
    section_name, _, key = dotted.rpartition(".")
    target = getattr(config, section_name) if section_name in SECTIONS else config
    if section_name and section_name not in SECTIONS or key not in _hints(type(target)):
        raise TochaError(f"unknown config key {dotted!r}")
    setattr(target, key, check_type(dotted, value, _hints(type(target))[key]))


def typed_value(dotted: str, value: Any) -> Any:
    """`value` as the config key `dotted` stores it (checked; `1e-2` and `0.010` both 0.01 for a
    float key): equal values spelt differently become one."""
    probe = RunConfig()
    set_value(probe, dotted, value)
    return get_value(probe, dotted)


def get_value(config: RunConfig, dotted: str) -> Any:
    """The value of `section.key` (or a top-level key, or `model.args.NAME`)."""
    if dotted.startswith(MODEL_ARG):
        return (config.model.args or {}).get(dotted.removeprefix(MODEL_ARG))
    section, _, key = dotted.rpartition(".")
    return getattr(getattr(config, section), key) if section else getattr(config, key)


def config_from_dict(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Build a RunConfig from nested dicts, rejecting unknown keys and wrong types by name."""
    if not isinstance(raw, dict):
        raise TochaError(f"{source}: expected a mapping of sections (data, model, train)")
    config = RunConfig()
    for key, value in raw.items():
        if key in SECTIONS:
            value = {} if value is None else value  # a section whose keys are all commented out
            if not isinstance(value, dict):
                raise TochaError(f"{source}: section {key!r} must be a mapping")
            for sub, sub_value in value.items():
                set_value(config, f"{key}.{sub}", sub_value)
        else:
            set_value(config, key, value)
    return config


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file; every problem is reported with the file's name."""
    path = regular_file(path, "config")  # a FIFO would hang the read, /dev/zero never end it
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise TochaError(
                f"{path}: {path.stat().st_size:,} bytes is not a run config (at most {MAX_CONFIG_BYTES:,})"
            )
        raw = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except OSError as e:
        raise TochaError(f"cannot read config {path}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise TochaError(f"{path}: not a text file (UTF-8), so not a run config") from None
    try:
        return config_from_dict(raw or {}, str(path))
    except TochaError as e:
        raise TochaError(f"{path}: {e}") from e


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain nested dict (YAML- and checkpoint-safe)."""
    return asdict(config)


def to_yaml(config: RunConfig) -> str:
    """The config as `load_config` reads it back (refused here if it could not be: too large)."""
    text = write_yaml(to_dict(config))
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise TochaError(f"this run's config takes {len(text.encode()):,} bytes as YAML, more than the "
                         f"{MAX_CONFIG_BYTES:,} a config may have (model.args?): give smaller "
                         "values")  # fmt: skip
    return text


def validate(config: RunConfig) -> None:
    """Reject values no run can use, before any work starts: every option's declared check."""
    for opt in options():
        value = get_value(config, opt.key)
        if opt.check is not None and value is not None and not opt.check[0](value):
            raise TochaError(f"config key {opt.key!r} {opt.check[1]} (got {brief(value)})")
    to_yaml(config)  # a config its own run could not read back (--resume) is refused now, not then


def copy_config(config: RunConfig) -> RunConfig:
    """A deep copy (not frozen), so resolving a config never mutates the caller's."""
    return config_from_dict(to_dict(config))


def freeze(config: RunConfig) -> RunConfig:
    """`config` made read-only, sections included (`Freezable`); returned for chaining."""
    for part in (config.data, config.model, config.train, config):
        object.__setattr__(part, "_frozen", True)
    return config
