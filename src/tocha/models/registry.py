"""A tiny model registry: `@register_model(...)` on a factory, then `create_model(name, **kwargs)`.

A model owns its options, as timm's models own their keyword arguments: its factory's keyword
arguments are the options (their defaults are the factory's), and `register_model` declares each
one's help, check and metavar beside the factory. The command line's model flags, `--vary` and
the checks before a run are all derived from these declarations. This module, and every family's
declaration, imports no torch: a factory imports its layers when it builds.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tocha.config import ModelConfig
from tocha.config_fields import Check, brief, check_type
from tocha.config_model import FAMILY_OPTIONS
from tocha.errors import TochaError
from tocha.models.user_names import is_own, parse_spec


@dataclass(frozen=True)
class ModelOption:
    """What a model says of one of its options: for `--help`, the flag's metavar, and its check."""

    help: str
    check: Check | None = None
    metavar: str | None = None


# Options several families take, declared once here.
ACTIVATION = ModelOption("relu, leaky_relu, sigmoid, tanh, gelu")
LOG_SOFTMAX = ModelOption("log-softmax head (for --loss nll); default: on exactly with nll")

DATA_GIVEN = ("in_shape", "num_classes", "vocab_size", "per_token")  # what the data decides, not an option
_MODELS: dict[str, Callable[..., Any]] = {}
_OPTIONS: dict[str, dict[str, ModelOption]] = {}


def register_model(**options: ModelOption) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a factory under its function name; its docstring's first line describes it, and
    `options` declares every keyword argument it takes beyond the data's shape."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        taken = [p for p in inspect.signature(fn).parameters if p not in DATA_GIVEN]
        if sorted(taken) != sorted(options):  # a model's options are declared, all of them, once
            raise TypeError(
                f"model {fn.__name__}: declare exactly its options {taken}, not {sorted(options)}"
            )
        _MODELS[fn.__name__] = fn
        _OPTIONS[fn.__name__] = dict(options)
        return fn

    return register


def list_models() -> dict[str, str]:
    """Name -> one-line description of every registered model."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in _MODELS.items()}


def model_options(name: str) -> list[str]:
    """The keyword arguments a model accepts beyond the data shape."""
    get_factory(name)
    return list(_OPTIONS[name])


def declared_options() -> dict[str, tuple[ModelOption, list[str]]]:
    """Every model option: its declaration and the models that take it (the flags come from here)."""
    found: dict[str, tuple[ModelOption, list[str]]] = {}
    for model, options in _OPTIONS.items():
        for option, declared in options.items():
            found.setdefault(option, (declared, []))[1].append(model)
    return found


def get_factory(name: str) -> Callable[..., Any]:
    try:
        return _MODELS[name]
    except KeyError:
        raise TochaError(f"unknown model {name!r}; known models: {', '.join(_MODELS)}") from None


def reads_text(name: str) -> bool:
    """Whether model `name` is one of tocha's text models (it takes token ids of a vocabulary)."""
    return name in _MODELS and "vocab_size" in inspect.signature(_MODELS[name]).parameters


def text_models() -> list[str]:
    return [name for name in _MODELS if reads_text(name)]


def check_inputs(name: str, vocab_size: int) -> None:
    """A text model is given text, and any other model images or rows, each said in one line."""
    if reads_text(name) and vocab_size < 2:
        raise TochaError(f"model {name} reads text (token ids of a vocabulary): give it text, a CSV's "
                         "--text COLUMN or a folder of .txt files per class")  # fmt: skip
    if vocab_size and not reads_text(name):
        raise TochaError(f"model {name} takes images or table rows, not text; text models: "
                         f"{', '.join(text_models())}")  # fmt: skip


def create_model(name: str, in_shape: tuple[int, int, int], num_classes: int, *, vocab_size: int = 0,
                 per_token: bool = False, columns: int = 0, **kwargs: object) -> Any:  # fmt: skip
    """Build model `name` for images of `in_shape` (C, H, W), or text of a `vocab_size` ids (T, 1,
    1), read beside `columns` table features where it has them; `None` kwargs mean "the default"."""
    factory = get_factory(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    _check_options(name, kwargs)
    check_inputs(name, vocab_size)
    text = {"vocab_size": vocab_size} if reads_text(name) else {}
    if per_token:  # next-token: an answer at every position
        if "per_token" not in inspect.signature(factory).parameters:
            able = [m for m in text_models() if "per_token" in inspect.signature(_MODELS[m]).parameters]
            raise TochaError(
                f"model {name} cannot predict the next token; next-token models: {', '.join(able)}"
            )
        text["per_token"] = True
    model = factory(in_shape=tuple(in_shape), num_classes=num_classes, **text, **kwargs)
    if columns:
        from tocha.models.sequence_layers import beside_columns

        return beside_columns(model, columns)
    return model


def _check_options(name: str, kwargs: dict[str, object]) -> None:
    unknown = set(kwargs) - set(model_options(name))
    if unknown:
        raise TochaError(
            f"model {name!r} has no option(s) {', '.join(sorted(unknown))}; its options: "
            f"{', '.join(model_options(name)) or 'none'} (each its flag, or --model-arg NAME=VALUE)"
        )


def check_model_config(cfg: ModelConfig) -> None:
    """The model exists and takes the options its config gives it, each of its declared type and
    passing its declared check, its activation existing: checked without building it (before any
    data is loaded, so a typo costs nothing). A model of your own takes its constructor's arguments,
    checked against its signature when its file is read (`models.user`)."""
    from tocha.models.layers import activation

    if is_own(cfg.name):
        parse_spec(cfg.name)
        return
    if cfg.file:
        raise TochaError(f"--model-file names your own model's code; {cfg.name} is one of tocha's models")
    if cfg.flatten is not None:
        raise TochaError(f"--flatten is for your own model; {cfg.name} takes its inputs as it was built to")
    given = {k: v for k, v in (cfg.args or {}).items() if v is not None}
    _check_options(cfg.name, given)
    for option, value in given.items():
        check_type(f"model.{option}", value, FAMILY_OPTIONS[option])
        check = _OPTIONS[cfg.name][option].check
        if check is not None and not check[0](value):
            raise TochaError(f"config key 'model.{option}' {check[1]} (got {brief(value)})")
    if given.get("activation") is not None:
        activation(given["activation"])


def config_options() -> list[str]:
    """Every option of tocha's families (`config_model.FAMILY_OPTIONS`: each a flag and a key)."""
    return list(FAMILY_OPTIONS)


def check_declared_types() -> None:
    """Every declared option has its type in `FAMILY_OPTIONS` (its flag and key), and every such
    option is some model's: the two cannot drift apart."""
    fields, declared = set(config_options()), set(declared_options())
    if fields != declared:
        raise TypeError(f"FAMILY_OPTIONS {sorted(fields)} and declared options {sorted(declared)} differ")


def with_defaults(cfg: ModelConfig) -> ModelConfig:
    """The config with every option its model takes filled in with the value the model uses
    (the factory's default where it is unset), so a run's config.yaml rebuilds the model without
    tocha: `mlp` records hidden_sizes [128, 64] and activation relu, not nulls."""
    if is_own(cfg.name):
        return cfg  # its arguments' defaults are filled in when its file is read (`models.user.recorded`)
    params = inspect.signature(get_factory(cfg.name)).parameters
    given = cfg.args or {}
    options = {}
    for name in model_options(cfg.name):
        value = given.get(name)
        if value is None and name in params:
            default = params[name].default
            value = list(default) if isinstance(default, tuple) else default
        options[name] = value
    return dataclasses.replace(cfg, args=options or None)


def family_options(cfg: ModelConfig) -> dict[str, Any]:
    """What a family's factory is given: the options its config sets (None: its default)."""
    return {k: v for k, v in (cfg.args or {}).items() if v is not None}
