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
from tocha.config_fields import Check, brief
from tocha.errors import TochaError
from tocha.models.user_names import is_own, model_label, parse_spec


@dataclass(frozen=True)
class ModelOption:
    """What a model says of one of its options: for `--help`, the flag's metavar, and its check."""

    help: str
    check: Check | None = None
    metavar: str | None = None


# Options several families take, declared once here.
ACTIVATION = ModelOption("relu, leaky_relu, sigmoid, tanh, gelu")
LOG_SOFTMAX = ModelOption("log-softmax head (for --loss nll); default: on exactly with nll")

_MODELS: dict[str, Callable[..., Any]] = {}
_OPTIONS: dict[str, dict[str, ModelOption]] = {}


def register_model(**options: ModelOption) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a factory under its function name; its docstring's first line describes it, and
    `options` declares every keyword argument it takes beyond the data's shape."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        taken = [p for p in inspect.signature(fn).parameters if p not in ("in_shape", "num_classes")]
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


def create_model(name: str, in_shape: tuple[int, int, int], num_classes: int, **kwargs: object) -> Any:
    """Build model `name` for images of `in_shape` (C, H, W); `None` kwargs mean "the default"."""
    factory = get_factory(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    _check_options(name, kwargs)
    return factory(in_shape=tuple(in_shape), num_classes=num_classes, **kwargs)


def _check_options(name: str, kwargs: dict[str, object]) -> None:
    unknown = set(kwargs) - set(model_options(name))
    if unknown:
        raise TochaError(
            f"model {name!r} has no option(s) {', '.join(sorted(unknown))}; "
            f"its options: {', '.join(model_options(name)) or 'none'}"
        )


def check_model_config(cfg: ModelConfig) -> None:
    """The model exists, takes the options set, each passes its declared check, and its activation
    exists: checked without building it (before any data is loaded, so a typo costs nothing)."""
    from tocha.models.layers import activation

    given = {k: getattr(cfg, k) for k in config_options() if getattr(cfg, k) is not None}
    if is_own(cfg.name):
        parse_spec(cfg.name)
        if given:  # tocha's own options mean nothing to a user's class
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise TochaError(f"{flags}: an option of tocha's own models; give {model_label(cfg.name)} its "
                             "arguments with --model-arg NAME=VALUE")  # fmt: skip
        return
    if cfg.args:
        raise TochaError(
            f"--model-arg is for your own model; {cfg.name}'s options are flags of their own "
            f"({', '.join('--' + o.replace('_', '-') for o in model_options(cfg.name)) or 'none'})"
        )
    if cfg.file:
        raise TochaError(f"--model-file names your own model's code; {cfg.name} is one of tocha's models")
    if cfg.flatten is not None:
        raise TochaError(f"--flatten is for your own model; {cfg.name} takes its inputs as it was built to")
    _check_options(cfg.name, given)
    for option, value in given.items():
        check = _OPTIONS[cfg.name][option].check
        if check is not None and not check[0](value):
            raise TochaError(f"config key 'model.{option}' {check[1]} (got {brief(value)})")
    if cfg.activation is not None:
        activation(cfg.activation)


OWN_MODEL_FIELDS = (
    "args",
    "file",
    "file_sha256",
    "sources",
    "signature",
    "flatten",
)  # what a user's model has instead (`models.user`)


def config_options() -> list[str]:
    """The family options a ModelConfig can hold: every field but the model's name and what
    describes a user's own model."""
    return [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("name", *OWN_MODEL_FIELDS)]


def check_declared_types() -> None:
    """Every declared option is a ModelConfig field (where a run's config stores it), and every
    such field is some model's option: the two cannot drift apart."""
    fields, declared = set(config_options()), set(declared_options())
    if fields != declared:
        raise TypeError(f"ModelConfig fields {sorted(fields)} and declared options {sorted(declared)} differ")


def with_defaults(cfg: ModelConfig) -> ModelConfig:
    """The config with every option its model takes filled in with the value the model uses
    (the factory's default where it is unset), so a run's config.yaml rebuilds the model without
    tocha: `mlp` records hidden_sizes [128, 64] and activation relu, not nulls."""
    if is_own(cfg.name):
        return cfg  # its arguments' defaults are filled in when its file is read (`models.user.recorded`)
    params = inspect.signature(get_factory(cfg.name)).parameters
    filled = {}
    for name in model_options(cfg.name):
        if name in params and getattr(cfg, name, None) is None and name in config_options():
            default = params[name].default
            filled[name] = list(default) if isinstance(default, tuple) else default
    return dataclasses.replace(cfg, **filled)
