"""Your own model: a class or a function of yours, named `FILE.py:NAME` or `package.module:NAME`.

Importing a file runs its code, so tocha imports one only when it is trusted: named now (`--model`,
`--model-file`, or `model=` in Python), or recorded by a run with a SHA-256 the file still has. A
checkpoint alone never causes an import: its weights are read weights-only, and the code comes from
a file on this machine that the user named or that is unchanged since the run recorded it. The bytes
hashed are the bytes run (read once), so nothing can change in between.

NAME may be an `nn.Module` class, a function returning a module, or a module object defined in the
file (the notes' `model = nn.Sequential(...)`): an object is copied and each of its layers
re-initialised under the run's seed (`reset_parameters`), so a seed decides the start as it does
for a class. This module imports no torch until a model is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tocha.config import ModelConfig
from tocha.config_fields import brief
from tocha.errors import TochaError
from tocha.models.code_trust import CodeTrust, signature, signed_here
from tocha.models.local_import import SourceCheck, local_imports, sha256_bytes

PYTHON = "python"  # `python:NAME`: a model given as a Python object, with no file to read it from again
SOURCE_COPY = "model_source.py"
MISSING = object()  # a run folder's copy of the file its model came from (for the record)


@dataclass(frozen=True)
class ModelSpec:
    """`FILE.py:NAME`, `package.module:NAME` or `python:NAME`, taken apart."""

    source: str  # the file as given, the dotted module, or "python"
    attr: str  # the class's, function's or module object's name in it

    @property
    def is_file(self) -> bool:
        return self.source.endswith(".py") or "/" in self.source or "\\" in self.source

    @property
    def is_python(self) -> bool:
        return self.source == PYTHON


def is_own(name: str) -> bool:
    """Whether a model name names the user's own model rather than one of tocha's families."""
    return ":" in name


def parse_spec(name: str) -> ModelSpec:
    source, _, attr = name.rpartition(":")
    dotted = re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", source) is not None
    spec = ModelSpec(source, attr)
    if not source or not attr.isidentifier() or not (spec.is_file or dotted):
        raise TochaError(f"--model {brief(name)}: expected FILE.py:NAME or package.module:NAME (NAME a "
                         "class, a function returning an nn.Module, or a module object)")  # fmt: skip
    return spec


def model_label(name: str) -> str:
    """What a model is called in lines and titles: its class's or function's name, or the family's."""
    return name.rpartition(":")[2] if is_own(name) else name


# -- finding and reading the file
def source_path(cfg: ModelConfig) -> Path:
    """The file the model's code is read from: the one named (`model.file`), else the one `--model`
    names (a dotted module: the file Python would import, found without running anything)."""
    spec = parse_spec(cfg.name)
    if cfg.file:
        return Path(cfg.file).expanduser().resolve()
    if spec.is_python:
        raise python_object_error(spec.attr)
    if spec.is_file:
        return Path(spec.source).expanduser().resolve()
    found = locate_module(spec.source)
    if found is None:
        raise TochaError(f"--model {cfg.name}: no module {spec.source!r} can be imported from here "
                         "(is its package installed, or give FILE.py:NAME)")  # fmt: skip
    return found


def locate_module(dotted: str) -> Path | None:
    """The file `import dotted` would run, looked for on Python's path and then in the working
    folder (as `python -m` and uvicorn do), found by walking the packages' folders: no package's
    `__init__.py` runs to find it."""
    from importlib.machinery import PathFinder

    search: list[str] | None = [*sys.path, str(Path.cwd())]
    spec = None
    parts = dotted.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve()


def package_root(dotted: str, path: Path) -> Path:
    """The folder holding a dotted module's top package: `a.b` at ROOT/a/b.py (or ROOT/a/b/__init__.py)."""
    depth = len(dotted.split(".")) - (0 if path.name == "__init__.py" else 1)
    return path.parents[depth]


def read_source(path: Path, what: str) -> bytes:
    from tocha.files import regular_file

    try:
        return regular_file(path, what).read_bytes()
    except OSError as e:
        raise TochaError(f"cannot read the {what} file {path}: {e.strerror}") from e


def checked_source(cfg: ModelConfig, copy: Path | None = None, check: bool = True) -> tuple[Path, bytes]:
    """The model's file and its bytes, refused (`check`) when it changed since a run recorded it;
    `copy`: the run's own copy of what it trained with, to say which line changed."""
    path = source_path(cfg)
    if not path.exists() and cfg.file_sha256:
        raise TochaError(f"the model file {path} recorded by this run is not on this machine; give the file "
                         "to use with --model-file FILE.py (model_file= in Python)")  # fmt: skip
    data = read_source(path, "model")
    digest = sha256_bytes(data)
    if check and cfg.file_sha256 and digest != cfg.file_sha256:
        raise TochaError(f"{path} changed since the run was trained ({what_changed(data, copy)}; SHA-256 "
                         f"{cfg.file_sha256[:12]}... recorded, {digest[:12]}... now); --model-file {path} "
                         "uses it anyway, its weights checked against the run's")  # fmt: skip
    return path, data


def what_changed(now: bytes, copy: Path | None) -> str:
    """The first line that differs from the run's copy of the file, or that it differs at all."""
    if copy is None or not copy.is_file():
        return "its content differs"
    before = copy.read_bytes().decode("utf-8", "replace").splitlines()
    after = now.decode("utf-8", "replace").splitlines()
    for tag, i1, _i2, j1, _j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            old = before[i1].strip() if i1 < len(before) else "(end of file)"
            new = after[j1].strip() if j1 < len(after) else "(end of file)"
            return f"line {j1 + 1}: {brief(new)} where it was {brief(old)}"
    return "its content differs only in line endings"


# -- the other files its import loads: "SHA256  PATH" lines, as sha256sum writes them
def sources_of(cfg: ModelConfig) -> dict[str, str]:
    """The user's modules a run recorded its model's import loading: path -> SHA-256."""
    found = {}
    for line in cfg.sources or []:
        digest, _, path = line.partition("  ")
        found[path] = digest
    return found


def sources_lines(loaded: dict[str, str], model_file: Path) -> list[str] | None:
    lines = [f"{digest}  {path}" for path, digest in sorted(loaded.items()) if path != str(model_file)]
    return lines or None


def check_recorded_sources(recorded: dict[str, str], model_file: Path) -> None:
    """Every recorded module of the user's is as it was, checked before any of the code runs."""
    check = SourceCheck(recorded, model_file)
    for path in recorded:
        if path == str(model_file):
            continue
        if not Path(path).is_file():
            raise TochaError(f"{path}, which {model_file.name} imports, is not on this machine; give the "
                             f"code to use with --model-file {model_file}")  # fmt: skip
        check.admit(Path(path), read_source(Path(path), "model"))


# -- importing it
# (path, SHA-256) -> (module, the user's modules it loaded): each version run once per process
_IMPORTED: dict[tuple[str, str], tuple[ModuleType, dict[str, str]]] = {}


Imported = tuple[ModuleType, Path, str, dict[str, str]]  # module, file, its SHA-256, the sources loaded


def import_source(cfg: ModelConfig, copy: Path | None = None,
                  trust: CodeTrust = CodeTrust.RECORDED) -> Imported:  # fmt: skip
    """The module holding the model, its file, the file's SHA-256 and every module of the user's its
    import loaded (path -> SHA-256). Only code the person chose runs (`models.code_trust`): named
    now, trusted with --trust-code, or a record signed here; a recorded one runs only as recorded."""
    spec = parse_spec(cfg.name)
    if spec.is_python and not cfg.file:
        raise python_object_error(spec.attr)
    if trust is CodeTrust.RECORDED and not signed_here(cfg):
        raise unchosen_error(cfg)
    as_recorded = trust is not CodeTrust.NAMED and bool(cfg.file_sha256)
    path, data = checked_source(cfg, copy, check=as_recorded)
    recorded = {**sources_of(cfg), str(path): cfg.file_sha256} if as_recorded else None  # type: ignore[dict-item]
    if recorded:
        check_recorded_sources(recorded, path)
    digest = sha256_bytes(data)
    cached = _IMPORTED.get((str(path), digest))
    if cached is not None and still_as_loaded(cached[1], recorded, path):
        return cached[0], path, digest, cached[1]
    check = SourceCheck(recorded, path)
    dotted = not spec.is_file and not spec.is_python and locate_module(spec.source) in (path, None)
    if dotted:
        root = package_root(spec.source, path)
        module = import_dotted(spec.source, path, root, check)  # as its package imports it
    else:
        module = run_file(path, data, digest, check)
    _IMPORTED[(str(path), digest)] = (module, check.loaded)
    return module, path, digest, check.loaded


def still_as_loaded(loaded: dict[str, str], recorded: dict[str, str] | None, model_file: Path) -> bool:
    """Whether a module imported earlier in this process ran the files as they are now (and as the
    record says, where there is one)."""
    if recorded is not None and {p: d for p, d in loaded.items() if p != str(model_file)} != {
        p: d for p, d in recorded.items() if p != str(model_file)
    }:
        return False
    for path, digest in loaded.items():
        try:
            if sha256_bytes(Path(path).read_bytes()) != digest:
                return False
        except OSError:
            return False
    return True


def run_file(path: Path, data: bytes, digest: str, check: SourceCheck) -> ModuleType:
    """The file as a module of its own name (so two versions never mix), compiled from `data`; the
    helpers it imports beside it found in its folder after every installed package, each checked."""
    stem = re.sub(r"\W", "_", path.stem)
    name = f"tocha_model_{stem}_{digest[:12]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up by name
    try:
        with local_imports([path.parent], check):
            exec(compile(data, str(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except TochaError:
        del sys.modules[name]
        raise
    except (Exception, SystemExit) as e:
        del sys.modules[name]
        raise TochaError(f"{path}: running it failed: {one_line(e)}") from e
    return module


def import_dotted(dotted: str, path: Path, root: Path, check: SourceCheck) -> ModuleType:
    try:
        with local_imports([root], check):
            module = importlib.import_module(dotted)
    except TochaError:
        raise
    except (Exception, SystemExit) as e:
        raise TochaError(f"import {dotted} failed: {one_line(e)}") from e
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise TochaError(f"import {dotted} runs {module.__file__}, not the recorded {path}; give "
                         "--model-file to use the one found now")  # fmt: skip
    return module


def unchosen_error(cfg: ModelConfig) -> TochaError:
    """The refusal of code nobody named: what it would run, and the two ways to allow it."""
    where = cfg.file or parse_spec(cfg.name).source
    return TochaError(f"the model {model_label(cfg.name)} is code ({where}) named by a file, not on this "
                      "command line nor by a run trained on this machine; tocha runs only code you "
                      f"choose: name it with --model-file {where} (model_file= in Python), or give "
                      "--trust-code (trust_code=True) to run it as recorded")  # fmt: skip


def one_line(e: BaseException) -> str:
    """An exception as `Type: first line of its message` (a SyntaxError with its line)."""
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    text = str(e).strip().strip("'\"").splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first if len(first) <= 200 else first[:197] + '...'}".rstrip(": ")


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
        raise TochaError(f"{spec.attr} in {path} is a {type(obj).__name__}, not an nn.Module class, a "
                         "function returning one, or a module object")  # fmt: skip
    if getattr(obj, "__module__", None) != module.__name__:
        raise TochaError(f"{spec.attr} in {path} is imported there (from {getattr(obj, '__module__', '?')}), "
                         "not defined in it; name the file that defines it")  # fmt: skip
    return obj


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


def check_arguments(obj: Any, args: dict[str, Any], label: str) -> dict[str, Any]:
    """`args` bound to the constructor's (or function's) parameters, its defaults filled in: what the
    run records. A name it does not take, or one it needs and did not get, said with what it takes."""
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
    missing = [p.name for p in params if p.default is p.empty and p.name not in args and
               p.kind != p.POSITIONAL_ONLY]  # fmt: skip
    if missing:
        raise TochaError(f"{label} needs {', '.join(missing)}: give each with --model-arg NAME=VALUE "
                         f"(model_args= in Python); it takes {takes}")  # fmt: skip
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

    try:
        module = obj(**args)
    except Exception as e:
        shown = ", ".join(f"{k}={brief(v)}" for k, v in args.items())
        raise TochaError(f"{label}({shown}) raised {one_line(e)}") from e
    if not isinstance(module, nn.Module):
        raise TochaError(f"{label} returned a {type(module).__name__}, not an nn.Module")
    return module


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
            raise TochaError(f"{label} is a module object whose layer {layer_name} cannot be "
                             "re-initialised (no reset_parameters); name a class or a function returning "
                             "the model instead")  # fmt: skip
        if own:
            layer.reset_parameters()
    return model


def own_maker(cfg: ModelConfig, copy: Path | None = None,
              trust: CodeTrust = CodeTrust.RECORDED) -> Callable[[], Any]:  # fmt: skip
    """What builds the user's model the config names, afresh each call (call it under the run's
    seed); the file is imported (once) now, if the person chose it (`import_source`)."""
    return recorded_with_maker(cfg, copy, trust)[1]


def recorded(cfg: ModelConfig, copy: Path | None = None,
             trust: CodeTrust = CodeTrust.RECORDED) -> ModelConfig:  # fmt: skip
    """The config with what the run records of the user's model (see `recorded_with_maker`)."""
    return recorded_with_maker(cfg, copy, trust)[0]


Maker = Callable[[], Any]  # builds a fresh model each call


def recorded_with_maker(cfg: ModelConfig, copy: Path | None = None,
                        trust: CodeTrust = CodeTrust.RECORDED) -> tuple[ModelConfig, Maker]:  # fmt: skip
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
            raise TochaError(f"{spec.attr} in {path} is a module object, built already: it takes no "
                             "--model-arg")  # fmt: skip
        args, maker = None, lambda: fresh_copy(obj, spec.attr)
    else:
        args = check_arguments(obj, cfg.args or {}, spec.attr)
        maker = lambda: call_builder(obj, args, spec.attr)  # noqa: E731
    record = dataclasses.replace(cfg, file=str(path), file_sha256=digest, args=args or None,
                                 sources=sources_lines(loaded, path))  # fmt: skip
    return signed(record), maker


def signed(cfg: ModelConfig) -> ModelConfig:
    """The record with this user's signature (`models.code_trust`)."""
    return dataclasses.replace(cfg, signature=signature(cfg))


def recorded_source(cfg: ModelConfig) -> bytes | None:
    """The bytes of the file a run's model was recorded from, checked against its SHA-256 (None for a
    model with no file: tocha's own, or an object given in Python)."""
    if not is_own(cfg.name) or not cfg.file:
        return None
    data = read_source(Path(cfg.file), "model")
    if cfg.file_sha256 and sha256_bytes(data) != cfg.file_sha256:
        raise TochaError(f"{cfg.file} changed while the run started; start it again")
    return data


def python_object_error(label: str) -> TochaError:
    return TochaError(f"this run's model {label} was given as a Python object (tocha.train(model=...)), with "
                      f"no file tocha may import: give it again, tocha.load(run, model={label}(...)) or "
                      f"model= in tocha.evaluate / export / resume")  # fmt: skip


def python_name(given: Any) -> str:
    """`python:NAME` for a module or function given in Python: its class's or function's name."""
    import torch.nn as nn

    named = type(given) if isinstance(given, nn.Module) else given
    name = getattr(named, "__name__", "")
    return f"{PYTHON}:{name if name.isidentifier() else 'model'}"  # a lambda's name is <lambda>


def importable_name(given: Any) -> str | None:
    """`FILE.py:NAME` for a class or function defined at the top of a module file that can be read
    again (not a script's `__main__`, not a notebook's cell), else None."""
    module = sys.modules.get(getattr(given, "__module__", "") or "")
    name = getattr(given, "__qualname__", "")
    file = getattr(module, "__file__", None)
    if module is None or module.__name__ == "__main__" or not file or not str(file).endswith(".py"):
        return None
    if not name.isidentifier() or getattr(module, name, None) is not given:
        return None
    return f"{Path(file).resolve()}:{name}"
