"""`Answers`: a task's answers for named inputs, as `tocha predict` prints them (lines, CSV, JSON).

What goes out is safe to open: CSV through the csv module (a class name with a comma or a newline
stays one cell) with a cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first,
and not a number) led by a quote; JSON strict (a value that is not a finite number is `null`, never
the non-JSON `NaN`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from tocha.config_fields import brief
from tocha.errors import TochaError
from tocha.tasks.base import Task

SHOWN_NOTES = 10  # notes printed one per line; the rest counted


def check_top_k(top_k: object, name: str = "top_k") -> int:
    """`top_k` as an int of at least 1, else one error naming it and what it got: the one check
    of every place that takes it (from Python a "3" or a 2.5 would fail deep inside, and True would
    pass as 1). `name`: how the caller's user spells it (`--top-k` on the command line)."""
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise TochaError(
            f"{name} must be a whole number of at least 1, not {type(top_k).__name__} {brief(top_k)}"
        )
    return int(top_k)


def noted(subject: str, adjustments: list[tuple[str, str]]) -> list[str]:
    """One stderr line per (name, what was done) — the first few, then how many more."""
    lines = [f"{subject}{name}: {what}" for name, what in adjustments[:SHOWN_NOTES]]
    more = len(adjustments) - SHOWN_NOTES
    return lines + ([f"{subject}... and {more} more (see --json)"] if more > 0 else [])


@dataclass
class Answers:
    """A task's answers for named inputs (image paths, or a table's rows numbered from 1): what
    `tocha predict` prints, as lines, CSV or JSON."""

    task: Task
    classes: list[str]
    items: list[dict[str, Any]]  # {"path": ..., key: answer} or {row_key: ..., key: answer}
    row_key: str = "row"  # what names a table's row: its number from 1, or the ID column the run dropped
    notes: list[str] = field(default_factory=list)  # what was done to the inputs to answer (for stderr)

    def lines(self) -> list[str]:
        """`name: answer` per input."""
        key = self.task.answer_key(self.classes)
        return [
            f"{item.get('path', item.get(self.row_key))}: {self.task.answer_text(item[key])}"
            for item in self.items
        ]

    def csv(self) -> str:
        """`row,` and the task's columns, a line per row (quoted as the csv module quotes)."""
        key = self.task.answer_key(self.classes)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([inert(self.row_key), *self.task.answer_columns(self.classes)])
        rows = (
            [inert(str(item[self.row_key])), *map(inert, self.task.answer_cells(item[key]))]
            for item in self.items
        )
        writer.writerows(rows)
        return buffer.getvalue()

    def json(self) -> str:
        """The items as strict JSON."""
        return json.dumps(finite(self.items), indent=2, allow_nan=False)


def inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading quote
    (OWASP's advice for CSV injection); numbers, negative ones too, stay numbers."""
    if cell[:1] in FORMULA_STARTS and not NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def finite(value: Any) -> Any:
    """`value` with every float that is not finite made None (JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
