"""`option`: a config field declared once, with what the command line and `validate` need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

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


def at_least(low: int) -> Check:
    return (lambda v: v >= low, f"must be at least {low}")


def in_range(low: float, high: float, closed_low: bool = True) -> Check:
    if closed_low:
        return (lambda v: low <= v < high, f"must be in [{low}, {high})")
    return (lambda v: low < v < high, f"must be in ({low}, {high})")
