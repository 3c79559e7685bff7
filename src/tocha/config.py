"""Typed run configuration: dataclasses for data / model / training, YAML in and out.

A run's resolved config (every default filled in) is written to its run directory and stored in
each checkpoint, so `evaluate`, `predict` and `export` rebuild model and preprocessing from it.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tocha.errors import TochaError


@dataclass
class DataConfig:
    name: str = "auto"  # a registered dataset, an image-folder path, or auto (see README)
    data_dir: str | None = None
    download: bool = True
    image_size: list[int] | None = None  # [H, W] for image folders; None = most common size
    test_fraction: float = 0.2  # image folders without train/ and test/ sub-folders
    split_seed: int = 0
    on_bad_image: str = "fail"  # image folders: an unreadable file stops the load, or "skip" it
    mean: list[float] | None = None  # per channel; None = training-set statistics
    std: list[float] | None = None
    augment_flip: bool = False  # random horizontal flips (on the device, training only)
    augment_translate: int = 0  # random shifts of up to this many pixels


@dataclass
class ModelConfig:
    name: str = "tinyvgg"
    hidden_units: int | None = None  # tinyvgg
    hidden_sizes: list[int] | None = None  # mlp
    widths: list[int] | None = None  # resnet: stem and three stage widths
    activation: str | None = None  # mlp, tinyvgg
    log_softmax: bool | None = None  # None = true exactly when the loss is nll


@dataclass
class TrainConfig:
    epochs: int = 2
    batch_size: int = 64
    eval_batch_size: int = 1000
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0  # cross_entropy only
    seed: int = 0
    device: str = "auto"
    schedule: str = "constant"  # constant, onecycle, linear, cosine (stepped per batch)
    warmup_fraction: float = 0.25  # onecycle: share of the steps spent warming up
    precision: str = "auto"  # auto (bf16 on a CUDA GPU that has it, else fp32), fp32, bf16
    channels_last: bool | None = None  # None = on a CUDA GPU for convolutional models
    compile: bool = False  # torch.compile the model
    ema_decay: float | None = None  # evaluate an exponential moving average of the weights
    tta_flip: bool = False  # evaluate/predict: average the outputs of each image and its mirror


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs"
    run_name: str | None = None


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` if it fits `hint` (ints are accepted for floats), else raise naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise TochaError(f"config key {key!r}: expected a list, got {value!r}")
        return [_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` (no dot) as a string; accept what float() accepts
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise TochaError(f"config key {key!r}: expected {hint.__name__}, got {value!r}")
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def set_value(config: RunConfig, dotted: str, value: Any) -> None:
    """Set `section.key` (or a top-level key) after checking the key exists and the type fits."""
    section_name, _, key = dotted.rpartition(".")
    target = getattr(config, section_name) if section_name in SECTIONS else config
    if section_name and section_name not in SECTIONS or key not in _hints(type(target)):
        raise TochaError(f"unknown config key {dotted!r}")
    setattr(target, key, _check_type(dotted, value, _hints(type(target))[key]))


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
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TochaError(f"cannot read config {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise TochaError(f"{path}: not valid YAML ({e})") from e
    try:
        return config_from_dict(raw or {}, str(path))
    except TochaError as e:
        raise TochaError(f"{path}: {e}") from e


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain nested dict (YAML- and checkpoint-safe)."""
    return asdict(config)


def to_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)


def validate(config: RunConfig) -> None:
    """Reject values no run can use, before any work starts."""
    t = config.train
    checks = [
        (t.epochs >= 1, "train.epochs", "must be at least 1"),
        (t.batch_size >= 1, "train.batch_size", "must be at least 1"),
        (t.eval_batch_size >= 1, "train.eval_batch_size", "must be at least 1"),
        (t.lr > 0, "train.lr", "must be positive"),
        (0 <= t.label_smoothing < 1, "train.label_smoothing", "must be in [0, 1)"),
        (t.weight_decay >= 0, "train.weight_decay", "must be >= 0"),
        (0 < config.data.test_fraction < 1, "data.test_fraction", "must be in (0, 1)"),
        (config.data.augment_translate >= 0, "data.augment_translate", "must be >= 0"),
        (config.data.on_bad_image in ("fail", "skip"), "data.on_bad_image", "must be fail or skip"),
        (0 <= t.warmup_fraction < 1, "train.warmup_fraction", "must be in [0, 1)"),
        (t.ema_decay is None or 0 < t.ema_decay < 1, "train.ema_decay", "must be in (0, 1)"),
        (t.precision in ("auto", "fp32", "bf16"), "train.precision", "must be auto, fp32 or bf16"),
    ]
    for ok, key, why in checks:
        if not ok:
            raise TochaError(f"config key {key!r} {why} (got {get_value(config, key)!r})")


def config_keys() -> list[str]:
    """Every key of a RunConfig, dotted: `data.name`, ..., `out_dir`, `run_name`."""
    nested = [f"{section}.{key}" for section, cls in SECTIONS.items() for key in cls.__dataclass_fields__]
    return nested + [key for key in RunConfig.__dataclass_fields__ if key not in SECTIONS]


def get_value(config: RunConfig, dotted: str) -> Any:
    """The value of `section.key` (or a top-level key)."""
    section, _, key = dotted.rpartition(".")
    return getattr(getattr(config, section), key) if section else getattr(config, key)


def copy_config(config: RunConfig) -> RunConfig:
    """A deep copy, so resolving a config never mutates the caller's."""
    return config_from_dict(to_dict(config))
