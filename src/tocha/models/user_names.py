"""Your own model's name: `FILE.py:NAME`, `package.module:NAME`, or `python:NAME` for a module or
function given in Python, taken apart and shown (`models.user` builds it, `models.user_code`
imports its file)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tocha.config_fields import brief
from tocha.errors import TochaError

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
    # A name given in Python (compare's models= labels) may hold a dash: it names no file's object.
    named = re.fullmatch(r"[A-Za-z_][\w-]*", attr) if spec.is_python else attr.isidentifier()
    if not source or not named or not (spec.is_file or dotted):
        raise TochaError(
            f"--model {brief(name)}: expected FILE.py:NAME or package.module:NAME (NAME a "
            "class, a function returning an nn.Module, or a module object)"
        )
    return spec


def model_label(name: str) -> str:
    """What a model is called in lines and titles: its class's or function's name, or the family's."""
    return name.rpartition(":")[2] if is_own(name) else name


def python_object_error(label: str) -> TochaError:
    return TochaError(
        f"this run's model {label} was given as a Python object (tocha.train(model=...)), with "
        f"no file tocha may import: give it again, tocha.load(run, model={label}(...)) or "
        f"model= in tocha.evaluate / export / resume"
    )


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
