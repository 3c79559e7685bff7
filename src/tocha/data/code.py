"""Your own data named by a file: `--data FILE.py:NAME`, NAME a `Dataset`, tensors `(X, y)`, a pair
`(train, test)` or a mapping of splits defined in that file, or a function or class returning one
(called with `--data-arg NAME=VALUE`). What it gives is read as data given in Python is
(`data.given`); this module only finds it.

The file is code, so it runs under the rule a user's model file runs under (`models.code_trust`):
named on this command line (`--data`, `--data-file`), trusted with `--trust-code`, or recorded by a
run of this user on this machine. A run records the file, the SHA-256 of every file of yours its
import loads and the arguments, signed; `--resume` and `evaluate` import it again only as recorded.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from tocha.config import DataConfig
from tocha.errors import TochaError
from tocha.models.code_trust import CodeTrust, signature
from tocha.models.user import called, check_arguments, check_defined_in
from tocha.models.user_code import import_source, sources_lines
from tocha.models.user_names import MISSING, parse_spec

CODE_NAME = re.compile(r".+\.py:[A-Za-z_]\w*")


def is_data_code(name: str) -> bool:
    """Whether a data name is your own data's code, `FILE.py:NAME` (not a dataset, folder or table)."""
    return CODE_NAME.fullmatch(name) is not None


def opened(cfg: DataConfig, trust: CodeTrust = CodeTrust.RECORDED) -> tuple[DataConfig, Any]:
    """The data the file gives (not yet read: `data.given.load_given` reads it) and the record a run
    keeps of it: the file (absolute), its SHA-256 and every module of yours its import loads, the
    arguments with the function's defaults filled in, signed. The file is imported only if the
    person chose it (`trust`), and a recorded one only as it was recorded."""
    spec = parse_spec(cfg.name)
    module, path, digest, loaded = import_source(cfg, None, trust)
    obj = vars(module).get(spec.attr, MISSING)
    if obj is MISSING:
        found = [n for n, v in vars(module).items() if not n.startswith("_") and defined_in(v, module)]
        listed = ", ".join(found) if found else "no function, class or dataset"
        raise TochaError(f"{path} has no {spec.attr!r}; it defines {listed}")
    if inspect.isclass(obj) or inspect.isfunction(obj):
        check_defined_in(obj, module, spec.attr, path)
        args = check_arguments(obj, cfg.args or {}, spec.attr, flag="--data-arg")
        data = called(obj, args, spec.attr, f" in {path}")
    else:
        if cfg.args:
            raise TochaError(f"{spec.attr} in {path} is data already, not a function: it takes no --data-arg")
        args, data = None, obj
    record = dataclasses.replace(
        cfg, file=str(path), file_sha256=digest, args=args or None, sources=sources_lines(loaded, path)
    )
    return dataclasses.replace(record, signature=signature(record)), data


def data_of_code(recorded: DataConfig, named: str | None, trust_code: bool) -> Any:
    """What your data's file gives for a trained run (evaluate, export): the file `--data` names now
    (its arguments none, unless it is the recorded name), or the one the run recorded, imported
    only as recorded (signed here, or `--trust-code`)."""
    if named is not None and named != recorded.name:
        return opened(DataConfig(name=named), CodeTrust.NAMED)[1]
    if named is not None:
        as_named = dataclasses.replace(recorded, file=None, file_sha256=None, sources=None)
        return opened(as_named, CodeTrust.NAMED)[1]
    return opened(recorded, CodeTrust.TRUSTED if trust_code else CodeTrust.RECORDED)[1]


def defined_in(value: Any, module: Any) -> bool:
    """A function or class the file defines, or an object of a class it defines (a dataset)."""
    if inspect.isclass(value) or inspect.isfunction(value):
        return getattr(value, "__module__", None) == module.__name__
    return getattr(type(value), "__module__", None) == module.__name__ or isinstance(value, tuple | dict)
