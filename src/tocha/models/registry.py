"""A tiny model registry: `@register_model` on a factory, then `create_model(name, **kwargs)`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from torch import nn

from tocha.config import ModelConfig
from tocha.errors import TochaError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a factory under its function name; its docstring's first line describes it."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> dict[str, str]:
    """Name -> one-line description of every registered model."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in _MODELS.items()}


def model_options(name: str) -> list[str]:
    """The keyword arguments a model accepts beyond the data shape."""
    params = inspect.signature(get_factory(name)).parameters
    return [p for p in params if p not in ("in_shape", "num_classes")]


def get_factory(name: str) -> Callable[..., nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        raise TochaError(f"unknown model {name!r}; known models: {', '.join(_MODELS)}") from None


def create_model(name: str, in_shape: tuple[int, int, int], num_classes: int, **kwargs: object) -> nn.Module:
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
    """The model exists, takes the options set, and its activation exists: checked without
    building it (before any data is loaded, so a typo costs nothing)."""
    from tocha.models.layers import activation

    _check_options(cfg.name, {k: getattr(cfg, k) for k in config_options() if getattr(cfg, k) is not None})
    if cfg.activation is not None:
        activation(cfg.activation)


def config_options() -> list[str]:
    """The model options a ModelConfig can hold: every field but the model's name."""
    return [f.name for f in dataclasses.fields(ModelConfig) if f.name != "name"]


def model_from_config(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the model a (resolved) ModelConfig describes; unset (None) options take the default."""
    return create_model(cfg.name, in_shape, num_classes, **{k: getattr(cfg, k) for k in config_options()})


def model_on_meta(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The model with shapes and no storage (PyTorch's meta device): to count its parameters or
    check stored weights against it before any memory is taken."""
    import torch

    with torch.device("meta"):
        return model_from_config(cfg, in_shape, num_classes)


def check_model_fits(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int,
                     copies: int = 4) -> int:  # fmt: skip
    """Its parameter count, after checking that `copies` float32 copies of them fit in memory
    (training: weights, gradients and Adam's two moments)."""
    from tocha.memory import check_fits

    n = sum(p.numel() for p in model_on_meta(cfg, in_shape, num_classes).parameters())
    check_fits(4 * copies * n, f"model {cfg.name} with {n:,} parameters")
    return n


def with_defaults(cfg: ModelConfig) -> ModelConfig:
    """The config with every option its model takes filled in with the value the model uses
    (the factory's default where it is unset), so a run's config.yaml rebuilds the model without
    tocha: `mlp` records hidden_sizes [128, 64] and activation relu, not nulls."""
    params = inspect.signature(get_factory(cfg.name)).parameters
    filled = {}
    for name in model_options(cfg.name):
        if name in params and getattr(cfg, name, None) is None and name in config_options():
            default = params[name].default
            filled[name] = list(default) if isinstance(default, tuple) else default
    return dataclasses.replace(cfg, **filled)
