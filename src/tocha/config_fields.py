"""`option`: a config field declared once, with what the command line and `validate` need; and
`Freezable`, what makes a resolved config read-only."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tocha.errors import TochaError

Check = tuple[Callable[[Any], bool], str]  # (accepts the value?, what a valid value is)


def option(
    default: Any = None,
    help: str = "",
    *,
    flag: str | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    check: Check | None = None,
    cli: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field with what the CLI and `validate` need to know about it.

    `flag` replaces the derived `--field-name`; `cli` names a special argument form (`size`,
    `negate`); `choices` and `check` are enforced by `validate`, before any work starts.
    """
    if choices is not None and check is None:
        *first, last = choices
        check = (lambda v, allowed=choices: v in allowed, f"must be {', '.join(first)} or {last}")
    meta = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "check": check, "cli": cli}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Option:
    """One config key as the command line and `validate` see it."""

    key: str  # dotted: data.name, train.lr, out_dir
    hint: Any  # the field's type
    help: str
    flag: str
    metavar: str | None
    choices: tuple[str, ...] | None
    check: Check | None
    cli: str | None  # special argument form: size (HxW), negate (--no-x sets False)

    @property
    def section(self) -> str:
        return self.key.rpartition(".")[0]


def arguments_option(help: str, flag: str) -> Any:
    """NAME=VALUE given once a flag, gathered into a mapping: your model's or your data's arguments."""
    return option(None, help, flag=flag, metavar="NAME=VALUE", cli="pairs")


def code_file_option(what: str, flag: str, named_by: str, commands: str) -> Any:
    """The file your `what` (model, data) code is read from instead of the one recorded."""
    return option(
        None,
        f"the file your {what}'s code is read from (default: the one {named_by} names; {commands}: the "
        "one recorded, unchanged); naming it trusts it even when it changed",
        flag=flag,
        metavar="FILE.py",
    )


def recorded_option(help: str, flag: str | None = None) -> Any:
    """What tocha records of your code and no command line gives (a SHA-256, a signature)."""
    return option(None, f"{help} (recorded by tocha)", flag=flag, cli="recorded")


CODE_RECORD = {  # the record of your code's file, as the model's and the data's sections hold it
    "file_sha256": "the SHA-256 of that file",
    "sources": "the other files of yours its import loads, as `SHA256  PATH`",
    "signature": "this user's signature of the record, made when the code was named (`models.code_trust`)",
}


def options_of(cls: type, prefix: str, skip: tuple[str, ...] = ()) -> list[Option]:
    """The options a config dataclass declares (`option(...)` fields), keyed `prefix + name`."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        found.append(
            Option(
                key=f"{prefix}{f.name}",
                hint=hints[f.name],
                help=meta.get("help", ""),
                flag=meta.get("flag") or "--" + f.name.replace("_", "-"),
                metavar=meta.get("metavar"),
                choices=meta.get("choices"),
                check=meta.get("check"),
                cli=meta.get("cli"),
            )
        )
    return found


def at_least(low: int) -> Check:
    return (lambda v: v >= low, f"must be at least {low}")


def in_range(low: float, high: float, closed_low: bool = True) -> Check:
    if closed_low:
        return (lambda v: low <= v < high, f"must be in [{low}, {high})")
    return (lambda v: low < v < high, f"must be in ({low}, {high})")


def positive_sizes(count: int | None = None) -> Check:
    """A list of sizes, each at least 1 (and exactly `count` of them when given)."""
    what = f"{count} sizes" if count else "sizes"
    return (
        lambda v: (count is None or len(v) == count) and all(x >= 1 for x in v),
        f"must be {what}, each at least 1",
    )


def numbers_within(low: float, high: float) -> Check:
    """A list of finite numbers, each in [low, high] (a mean of NaN or a std of 1e-300 makes every
    input NaN or infinite)."""
    return (
        lambda v: all(math.isfinite(x) and low <= x <= high for x in v),
        f"must be numbers from {low:g} to {high:g}",
    )


def threads_of_this_machine() -> Check:
    """CPU threads: 1 to 4 per core of the machine the run starts on (4,096 on two cores only thrash)."""
    cores = os.cpu_count() or 1
    return (lambda v: 1 <= v <= 4 * cores, f"must be 1 to {4 * cores} (4 per core of this machine)")


SEED_LIMIT = 2**47  # seeds are combined with a rank (x 65,536) into torch's 64-bit seed
MAX_CONFIG_BYTES = 1 << 20  # a run config is a few hundred bytes; a megabyte is not one
MAX_SIDE = 4096  # pixels a side of an image tocha reads: `--image-size`, and what a file may declare
MAX_YAML_VALUES = 100_000  # values (scalars, lists, mappings) one YAML text may hold
MAX_YAML_DEPTH = 50  # how deeply its lists and mappings may nest


def read_yaml(text: str, source: str) -> Any:
    """YAML as tocha reads it (configs, `--model-arg` and `--vary` values, its own records): no
    anchors or aliases, at most MAX_YAML_VALUES values nested at most MAX_YAML_DEPTH deep. A value
    repeated by reference lets a few hundred bytes expand to billions of items (`&a [x, x]`, then
    `[*a, *a]`...), which a check that walks the value would spend minutes on; a run config never
    needs one. `source` names the text in the error (a file, a flag)."""
    import yaml

    class Bounded(yaml.SafeLoader):
        values, depth = 0, 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
                raise TochaError(
                    f"{source}: YAML anchors and aliases (& and *) are not read here; write each value out"
                )
            self.values += 1
            self.depth += 1
            try:
                if self.values > MAX_YAML_VALUES or self.depth > MAX_YAML_DEPTH:
                    raise TochaError(
                        f"{source}: more than {MAX_YAML_VALUES:,} values or nested more than "
                        f"{MAX_YAML_DEPTH} deep: not a run's settings"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=Bounded)  # noqa: S506 - a SafeLoader, bounded
    except yaml.YAMLError as e:
        raise TochaError(f"{source}: not valid YAML ({brief(str(e))})") from None


def write_yaml(value: Any) -> str:
    """YAML that `read_yaml` reads back: each value written out, never an anchor and an alias (which
    PyYAML writes for one list found twice)."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(value, Dumper=Plain, sort_keys=False)


def brief(value: Any) -> str:
    """A value for an error message, cut short: a hostile config (YAML aliases nested nine deep
    expand to a billion items) must never be printed in full."""
    import reprlib

    shown = reprlib.Repr()  # keyword arguments only from Python 3.12
    shown.maxlevel, shown.maxlist, shown.maxdict, shown.maxstring, shown.maxother = 3, 6, 6, 80, 80
    text = shown.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` if it fits `hint` (ints are accepted for floats), else raise naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return check_type(key, value, inner)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
            raise TochaError(
                f"config key {key!r}: expected a mapping of argument names to values, got {brief(value)}"
            )
        for name, item in value.items():
            if not plain_data(item):
                raise TochaError(
                    f"config key {key}.{name}: {brief(item)} is not a YAML value (a number, "
                    "text, true/false, null, or a list or mapping of them)"
                )
        return dict(value)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise TochaError(f"config key {key!r}: expected a list, got {brief(value)}")
        return [check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` (no dot) as a string; accept what float() accepts
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise TochaError(f"config key {key!r}: expected {hint.__name__}, got {brief(value)}")
    return value


def plain_data(value: Any, depth: int = 0) -> bool:
    """Whether `value` is what YAML writes and a weights-only checkpoint reads back: numbers, text,
    booleans, None, and lists and mappings of them (not too deeply nested)."""
    if depth > 20:
        return False
    if value is None or isinstance(value, bool | int | str) or isinstance(value, float):
        return True
    if isinstance(value, list | tuple):
        return all(plain_data(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_data(v, depth + 1) for k, v in value.items())
    return False


class Freezable:
    """A config section that `freeze` can make read-only: a resolved config records what a run
    did, so nothing may change it afterwards (a change is a new config: `dataclasses.replace`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise dataclasses.FrozenInstanceError(f"a resolved config is frozen: cannot set {name!r}")
        super().__setattr__(name, value)
