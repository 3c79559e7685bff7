"""Typed run configuration: the three sections (`config_data`, `config_model`, `config_train`)
joined as `RunConfig`, their keys, YAML in and out.

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

from tocha.config_data import DataConfig
from tocha.config_fields import (
    MAX_CONFIG_BYTES,
    Freezable,
    Option,
    brief,
    check_type,
    option,
    options_of,
    read_yaml,
    write_yaml,
)
from tocha.config_model import FAMILY_OPTIONS, ModelConfig
from tocha.config_train import TrainConfig
from tocha.errors import TochaError
from tocha.files import regular_file


@dataclass
class RunConfig(Freezable):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = option("runs", "parent folder of run folders (default runs)", flag="--out", metavar="DIR")
    run_name: str | None = option(None, "run folder name (default: time-dataset-model)", flag="--name")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def options() -> list[Option]:
    """Every config key with its type, help, flag and checks: the one source of option names. A
    family's model option (`model.hidden_units`) is a key of its own, held in the model's options;
    its help is where the families declare it (`tocha.models`)."""
    family = [
        Option(f"model.{name}", hint, "", "--" + name.replace("_", "-"), None, None, None, None)
        for name, hint in FAMILY_OPTIONS.items()
    ]  # after `model.args`: a flag of one option is set after the mapping of them all
    nested = [
        opt
        for name, cls in SECTIONS.items()
        for opt in options_of(cls, f"{name}.") + (family if name == "model" else [])
    ]
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
    "data_args": "data.args",
    "data_file": "data.file",
}


MODEL_ARG = "model.args."  # `model.args.NAME`: one of the model's options (your model's: an argument)


def model_option(dotted: str) -> str | None:
    """The model option a key names (`model.args.NAME`, or a family's `model.hidden_units`), or None."""
    if dotted.startswith(MODEL_ARG):
        return dotted.removeprefix(MODEL_ARG)
    section, _, key = dotted.rpartition(".")
    return key if section == "model" and key in FAMILY_OPTIONS else None


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
    """Set `section.key` (or a top-level key, or one of the model's options) after checking the key
    exists and the type fits. A model option set to None is left out (its model's default)."""
    if (name := model_option(dotted)) is not None:  # one option among the others the model takes
        if name in FAMILY_OPTIONS and not dotted.startswith(MODEL_ARG):
            value = check_type(dotted, value, FAMILY_OPTIONS[name])
        others = {k: v for k, v in (config.model.args or {}).items() if k != name}
        mapping = others if value is None else {**others, name: value}
        config.model.args = check_type("model.args", mapping, _hints(ModelConfig)["args"]) or None
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
    """The value of `section.key` (or a top-level key, or one of the model's options)."""
    if (name := model_option(dotted)) is not None:
        return (config.model.args or {}).get(name)
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
            # The model's options first: a family option written as a key of its own (as configs
            # once held them: `hidden_units: 16`, `args: null`) joins them, whatever the order.
            for sub, sub_value in sorted(value.items(), key=lambda item: item[0] != "args"):
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
