"""`tocha search --space KEY=SPEC`: one dimension of a search space, parsed and checked.

    lr=log:1e-4:1e-1                  a float drawn on a log scale (both bounds above 0)
    dropout=float:0:0.5               a float drawn on a linear scale
    epochs=int:2:8                    an integer, both bounds included
    hidden_sizes=choice:64|128,64     one of the choices (a list option's items are comma-separated)
    optimizer=choice:sgd|adam

The key is any config key `--vary` takes (`lr`, `train.lr`, `hidden_sizes`...); each value is
typed and checked as the config types it, so a choice the config would refuse is refused here,
before any trial trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tocha.config import resolve_key, typed_value
from tocha.errors import TochaError
from tocha.experiments.grid import _scalar

KINDS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class Dimension:
    key: str  # the config key, dotted
    kind: str  # one of KINDS
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()  # as written (what Optuna stores)
    values: tuple[Any, ...] = ()  # as the config types them

    def suggest(self, trial: Any) -> Any:
        """The trial's value for this dimension (Optuna draws it by its sampler)."""
        if self.kind == "choice":
            return self.values[self.choices.index(trial.suggest_categorical(self.key, list(self.choices)))]
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def value_of(self, stored: Any) -> Any:
        """A value Optuna stored for this dimension as the config takes it."""
        return self.values[self.choices.index(stored)] if self.kind == "choice" else stored

    def example(self) -> Any:
        """A value of the dimension, to check the config takes it before any trial."""
        return self.values[0] if self.kind == "choice" else int(self.low) if self.kind == "int" else self.low


def parse_space(text: str) -> Dimension:
    """`KEY=KIND:...` as a `Dimension`; any other spelling is one error naming it."""
    name, _, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    usage = (
        "give KEY=log:LOW:HIGH, KEY=float:LOW:HIGH, KEY=int:LOW:HIGH or KEY=choice:A|B|C "
        "(e.g. lr=log:1e-4:1e-1)"
    )
    if not name or kind not in KINDS or not rest:
        raise TochaError(f"--space {text}: {usage}")
    key = resolve_key(name.strip())
    if kind == "choice":
        choices = tuple(c.strip() for c in rest.split("|"))
        if any(not c for c in choices):
            raise TochaError(f"--space {text}: an empty choice; give each choice between the | marks")
        if len(set(choices)) != len(choices):
            raise TochaError(f"--space {text}: a choice given twice")
        values = tuple(typed_choice(key, c, text) for c in choices)
        return Dimension(key, kind, choices=choices, values=values)
    bounds = rest.split(":")
    try:
        low, high = (float(b) for b in bounds)
    except ValueError:
        raise TochaError(f"--space {text}: {usage}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise TochaError(f"--space {text}: the bounds must be two finite numbers, the first below the second")
    if kind == "log" and low <= 0:
        raise TochaError(f"--space {text}: a log scale needs bounds above 0")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise TochaError(f"--space {text}: int bounds are whole numbers")
    for bound in (low, high):  # the config's own checks, on both ends
        typed_value(key, int(bound) if kind == "int" else bound)
    return Dimension(key, kind, low, high)


def typed_choice(key: str, choice: str, text: str) -> Any:
    """One choice as the config types it: a scalar, or (for a list option) comma-separated items."""
    try:
        return typed_value(key, _scalar(choice))
    except TochaError as scalar_error:
        try:
            return typed_value(key, [_scalar(item) for item in choice.split(",")])
        except TochaError:
            raise scalar_error from None


def parse_spaces(texts: list[str]) -> list[Dimension]:
    """Every `--space`, each key once."""
    if not texts:
        raise TochaError("tocha search needs at least one --space KEY=SPEC (e.g. --space lr=log:1e-4:1e-1)")
    dims = [parse_space(t) for t in texts]
    keys = [d.key for d in dims]
    if len(set(keys)) != len(keys):
        raise TochaError("--space: the same option is given twice")
    return dims
