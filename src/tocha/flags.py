"""Command-line flags derived from the config's options (`tocha.config.options`).

Each config field becomes one flag (`train.batch_size` -> `--batch-size`, or the flag it declares),
parsed by its type: numbers, comma-separated lists, `--x/--no-x` for booleans, `HxW` for sizes.
The flags a user gave become {config key: value}, applied over `--config FILE` or the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from typing import Any

from tocha.config import Option, RunConfig, options, resolve_key
from tocha.errors import TochaError
from tocha.models.code_trust import CodeTrust, chosen_by


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _pair(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`, the value read as YAML (`10`, `0.5`, `true`, `[64, 32]`, `relu`)."""
    from tocha.config_fields import read_yaml

    name, sep, raw = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (an argument's name, then its value), got {text!r}"
        )
    try:
        return name.strip(), read_yaml(raw, f"the argument {name.strip()}")
    except TochaError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _size(text: str) -> list[int]:
    values = _int_list(text.replace("x", ","))
    return values * 2 if len(values) == 1 else values


PARSERS = {int: int, float: float, str: str, list[int]: _int_list, list[float]: _float_list, list[str]: names}


def _argument(opt: Option) -> dict[str, Any]:
    """argparse keywords for a config option, from its declared type, help and checks."""
    kwargs: dict[str, Any] = {"dest": opt.key, "help": opt.help or None}
    if opt.cli == "negate":  # --no-download: the flag sets the option False
        return {**kwargs, "action": "store_const", "const": False, "default": None}
    if opt.cli == "pairs":  # --model-arg a=1 --model-arg b=2: a mapping, a pair per flag
        return {**kwargs, "action": "append", "type": _pair, "default": None, "metavar": opt.metavar}
    hint = _without_none(opt.hint)
    if hint is bool:
        return {**kwargs, "action": argparse.BooleanOptionalAction, "default": None}
    kwargs.update(default=None, type=_size if opt.cli == "size" else PARSERS[hint])
    if opt.choices:
        return {**kwargs, "choices": list(opt.choices)}
    return {**kwargs, "metavar": opt.metavar or opt.key.rpartition(".")[2].upper()}


def _without_none(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint


def add_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...]) -> None:
    """One flag per config option of `sections` ("data", "model", "train", "" for out_dir/run_name);
    a model's options say what they are where the models declare them (`tocha.models`)."""
    for opt in options():
        if opt.section in sections and opt.cli != "recorded":  # recorded by tocha, never given
            parser.add_argument(opt.flag, **_argument(described(opt)))


def described(opt: Option) -> Option:
    """A model option with the help and metavar its models declare (and which models take it)."""
    if opt.section != "model" or opt.help:
        return opt
    from tocha.models.registry import declared_options

    declared, models = declared_options()[opt.key.rpartition(".")[2]]
    help = f"{declared.help} ({', '.join(models)})" if len(models) < 4 else declared.help
    return dataclasses.replace(opt, help=help, metavar=declared.metavar)


def given(args: argparse.Namespace) -> dict[str, object]:
    """{config key: value} for every config flag the user gave."""
    pairs = {opt.key for opt in options() if opt.cli == "pairs"}
    keys = {opt.key for opt in options()}
    found = {key: value for key, value in vars(args).items() if key in keys and value is not None}
    for key in pairs & set(found):  # [(name, value), ...] -> {name: value}, the last given winning
        found[key] = dict(found[key])
    return found


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """`--config FILE` (or defaults), then every flag the user gave, by config key."""
    from tocha.config import load_config, set_value

    config = load_config(args.config) if getattr(args, "config", None) else RunConfig()
    for key, value in given(args).items():
        set_value(config, key, value)
    return config


def add_trust_code(parser: argparse.ArgumentParser) -> None:
    """--trust-code: run the model code a file records though no run of this machine recorded it."""
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="run the model code that a checkpoint, export, config or run folder names "
        "(otherwise only code named on this command line, or recorded by a run "
        "trained on this machine, runs): give it only for files you trust and "
        "whose code you have read, as it runs that code here",
    )


def code_trust(args: argparse.Namespace, axes: list[str] | None = None, section: str = "model") -> CodeTrust:
    """Who chose a user's model's code (or data's: `section`) for this command: named here
    (`--model`, `--model-file`, a `--vary` / `--space` of the model), trusted (`--trust-code`), or only
    a record signed here."""
    keys = set(given(args))
    for axis in axes or []:
        name = axis.partition("=")[0]
        try:
            keys.add(resolve_key(name))
        except TochaError:  # a misspelt axis is its command's to report
            continue
    return chosen_by(keys, getattr(args, "trust_code", False), section)


def parse_with_suggestions(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args`, but an unknown flag close to a real one names it ("--optimiser":
    did you mean --optimizer?); argparse itself suggests only from Python 3.14."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        known = sorted(_option_strings(_chosen(parser, getattr(args, "command", None))))
        hints = []
        for word in unknown:
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                close = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
                hints += [f"{flag}: did you mean {close[0]}?"] if close else []
        parser.error(f"unrecognized arguments: {' '.join(unknown)}" + "".join(f" ({h})" for h in hints))
    return args


def _chosen(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The subcommand's parser, whose flags are the ones that could have been meant."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every long flag of a parser and of its subcommands (the wrong one may belong to any)."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found
