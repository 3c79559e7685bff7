"""Your own model built: a class or a function of yours, or a module object, named `FILE.py:NAME` or
`package.module:NAME` (`models.user_names`), from its file as `models.user_code` imports it.

NAME may be an `nn.Module` class, a function returning a module, or a module object defined in the
file (the notes' `model = nn.Sequential(...)`): an object is copied and each of its layers
re-initialised under the run's seed (`reset_parameters`), so a seed decides the start as it does
for a class. A run records the file, the SHA-256 of every file of yours its import loads and the
arguments, signed (`models.code_trust`). This module imports no torch until a model is built.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tocha.config import ModelConfig
from tocha.config_fields import brief
from tocha.errors import TochaError, one_line
from tocha.models.code_trust import CodeTrust, signature
from tocha.models.local_import import sha256_bytes
from tocha.models.user_code import import_source, imported_bytes, read_source, sources_lines
from tocha.models.user_names import MISSING, ModelSpec, is_own, parse_spec


# -- from the module to the model
def named_object(module: ModuleType, spec: ModelSpec, path: Path) -> Any:
    """`spec.attr` in the module: a class or a function defined in that very file, or a module
    object; else what there is. Something the file imports (the standard library's `os.system`,
    say) is never called: naming a file chooses the code written in it."""
    import torch.nn as nn

    obj = vars(module).get(spec.attr, MISSING)
    if obj is MISSING:
        found = candidates(module)
        listed = ", ".join(found) if found else "no nn.Module class, function or module object"
        raise TochaError(f"{path} has no {spec.attr!r}; it defines {listed}")
    if isinstance(obj, nn.Module):
        return obj
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise TochaError(f"{spec.attr} in {path} is a class but not an nn.Module")
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        raise TochaError(
            f"{spec.attr} in {path} is a {type(obj).__name__}, not an nn.Module class, a "
            "function returning one, or a module object"
        )
    check_defined_in(obj, module, spec.attr, path)
    return obj


def check_defined_in(obj: Any, module: ModuleType, attr: str, path: Path) -> None:
    """A class or function named in a file must be written in it: one it imports (the standard
    library's `os.system`) is refused (your data's file is held to the same, `data.code`)."""
    if getattr(obj, "__module__", None) != module.__name__:
        raise TochaError(
            f"{attr} in {path} is imported there (from {getattr(obj, '__module__', '?')}), "
            "not defined in it; name the file that defines it"
        )


def candidates(module: ModuleType) -> list[str]:
    """What a file defines that --model could name: its nn.Module classes, functions and module objects."""
    import torch.nn as nn

    found = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        own = getattr(obj, "__module__", None) == module.__name__
        if (
            isinstance(obj, nn.Module)
            or (own and inspect.isclass(obj) and issubclass(obj, nn.Module))
            or (own and inspect.isfunction(obj))
        ):
            found.append(name)
    return found


def check_arguments(obj: Any, args: dict[str, Any], label: str, flag: str = "--model-arg") -> dict[str, Any]:
    """`args` bound to the constructor's (or function's) parameters, its defaults filled in: what the
    run records. A name it does not take, or one it needs and did not get, said with what it takes
    (`flag`: the flag that gives one)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return dict(args)  # a builtin without a signature: its call says what is wrong
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes = ", ".join(p.name for p in params) or "no arguments"
    open_ended = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [name for name in args if name not in {p.name for p in params} and not open_ended]
    if unknown:
        raise TochaError(f"{label} takes no argument {', '.join(map(repr, unknown))}; it takes {takes}")
    missing = [
        p.name for p in params if p.default is p.empty and p.name not in args and p.kind != p.POSITIONAL_ONLY
    ]
    if missing:
        raise TochaError(
            f"{label} needs {', '.join(missing)}: give each with {flag} NAME=VALUE "
            f"({flag[2:].replace('-', '_')}s= in Python); it takes {takes}"
        )
    filled = dict(args)
    for p in params:
        if p.name not in filled and p.default is not p.empty and is_plain(p.default):
            filled[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return filled


def is_plain(value: Any) -> bool:
    from tocha.config_fields import plain_data

    return plain_data(value)


def call_builder(obj: Any, args: dict[str, Any], label: str) -> Any:
    """A fresh module from a class or a function: one line naming it if it raises or returns
    something else."""
    import torch.nn as nn

    module = called(obj, args, label)
    if not isinstance(module, nn.Module):
        raise TochaError(f"{label} returned a {type(module).__name__}, not an nn.Module")
    return module


def called(obj: Any, args: dict[str, Any], label: str, where: str = "") -> Any:
    """`obj(**args)`, or one line naming the call (`where`: the file it is in) and what it raised."""
    try:
        return obj(**args)
    except Exception as e:
        shown = ", ".join(f"{k}={brief(v)}" for k, v in args.items())
        raise TochaError(f"{label}({shown}){where} raised {one_line(e)}") from e


def fresh_copy(module: Any, label: str) -> Any:
    """A module object's copy, each layer re-initialised under the current seed (the run's); on the
    meta device (a check's copy), shapes only."""
    import copy

    import torch

    if torch.empty(0).device.type == "meta":  # under `with torch.device("meta")`: no storage copied
        from tocha.models.meta import meta_copy

        return meta_copy(module)
    model = copy.deepcopy(module)
    for name, layer in model.named_modules():
        own = list(layer.parameters(recurse=False))
        if own and not callable(getattr(layer, "reset_parameters", None)):
            layer_name = name or type(layer).__name__
            raise TochaError(
                f"{label} is a module object whose layer {layer_name} cannot be "
                "re-initialised (no reset_parameters); name a class or a function returning "
                "the model instead"
            )
        if own:
            layer.reset_parameters()
    return model


def own_maker(
    cfg: ModelConfig, copy: Path | None = None, trust: CodeTrust = CodeTrust.RECORDED
) -> Callable[[], Any]:
    """What builds the user's model the config names, afresh each call (call it under the run's
    seed); the file is imported (once) now, if the person chose it (`import_source`)."""
    return recorded_with_maker(cfg, copy, trust)[1]


def recorded(
    cfg: ModelConfig, copy: Path | None = None, trust: CodeTrust = CodeTrust.RECORDED
) -> ModelConfig:
    """The config with what the run records of the user's model (see `recorded_with_maker`)."""
    return recorded_with_maker(cfg, copy, trust)[0]


Maker = Callable[[], Any]  # builds a fresh model each call


def recorded_with_maker(
    cfg: ModelConfig, copy: Path | None = None, trust: CodeTrust = CodeTrust.RECORDED
) -> tuple[ModelConfig, Maker]:
    """What the run records of the user's model: the file (absolute), its SHA-256 and every module
    of the user's its import loads, the arguments with the constructor's defaults filled in, and this
    user's signature of it all (the code was chosen: named now, trusted, or a record signed here);
    and what builds the model afresh each call, from that very import (the file is read once).
    Imports the file (if the person chose it) and checks that NAME is there and takes the arguments."""
    import torch.nn as nn

    spec = parse_spec(cfg.name)
    module, path, digest, loaded = import_source(cfg, copy, trust)
    obj = named_object(module, spec, path)
    if isinstance(obj, nn.Module):
        if cfg.args:
            raise TochaError(
                f"{spec.attr} in {path} is a module object, built already: it takes no --model-arg"
            )
        args, maker = None, lambda: fresh_copy(obj, spec.attr)
    else:
        args = check_arguments(obj, cfg.args or {}, spec.attr)
        maker = lambda: call_builder(obj, args, spec.attr)  # noqa: E731
    record = dataclasses.replace(
        cfg, file=str(path), file_sha256=digest, args=args or None, sources=sources_lines(loaded, path)
    )
    return signed(record), maker


def signed(cfg: ModelConfig) -> ModelConfig:
    """The record with this user's signature (`models.code_trust`)."""
    return dataclasses.replace(cfg, signature=signature(cfg))


def recorded_source(cfg: ModelConfig) -> bytes | None:
    """The bytes of the file a run's model was recorded from, checked against its SHA-256 (None for a
    model with no file: tocha's own, or an object given in Python)."""
    if not is_own(cfg.name) or not cfg.file:
        return None
    if cfg.file_sha256 and (data := imported_bytes(cfg.file, cfg.file_sha256)) is not None:
        return data  # what this process hashed and ran: not read again
    data = read_source(Path(cfg.file), "model")
    if cfg.file_sha256 and sha256_bytes(data) != cfg.file_sha256:
        raise TochaError(f"{cfg.file} changed while the run started; start it again")
    return data
