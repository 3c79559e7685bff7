"""Answers as `tocha predict` gives them, with what was done to the inputs said beside them: an
image file's conversion to the model's size and mode; a table file's rows named as the file names
them (the ID column the run dropped, else their number) and each cell the model could not take as
it was (a missing number filled, an unknown category)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tocha.data.images import MODE_WORDS, conversion
from tocha.data.table import RawTable
from tocha.data.table_encoder import Adjusted, row_keys
from tocha.tasks import Answers, Task
from tocha.tasks.answers import noted


def answered_rows(task: Task, classes: list[str], answers: list[Any], table: RawTable,
                  *, adjusted: list[Adjusted], record: dict[str, Any],
                  dropped: list[str] | None) -> Answers:  # fmt: skip
    """`answers` (one per row of `table`) as `tocha predict` gives them: keyed by the row's name
    (`record`: the run's table record, whose columns left out, or else the run's `dropped`, may
    hold an ID), with an `adjusted` list on each row where a cell was filled or its category
    unknown, and one stderr note per such cell."""
    row_key, names = row_keys(table, record.get("dropped") or dropped)
    key = task.answer_key(classes)
    by_row: dict[int, list[str]] = {}
    for cell in adjusted:
        by_row.setdefault(cell.row, []).append(cell.text())
    items = []
    for row, (name, answer) in enumerate(zip(names, answers, strict=True)):
        items.append({row_key: name, key: answer, **({"adjusted": by_row[row]} if row in by_row else {})})
    notes = noted(f"{table.path.name}: ", [(f"{row_key} {names[c.row]}", c.text()) for c in adjusted])
    return Answers(task, classes, items, row_key, notes)


def answered_files(task: Task, classes: list[str], answers: list[Any], paths: list[Path], *, mode: str,
                   size: tuple[int, int]) -> Answers:  # fmt: skip
    """`answers` (one per image file) beside each path, with `converted`: what decoding it for the
    model (`mode`, `size` (H, W)) changed, or None; one stderr note per converted file."""
    changed = [conversion(Path(p), mode, size) for p in paths]
    key = task.answer_key(classes)
    items = [
        {"path": str(p), key: a, "converted": c} for p, a, c in zip(paths, answers, changed, strict=True)
    ]
    model_takes = f" (the model takes {size[1]}x{size[0]} {MODE_WORDS[mode]})"
    notes = noted("", [(str(p), f"{c}{model_takes}") for p, c in zip(paths, changed, strict=True) if c])
    return Answers(task, classes, items, notes=notes)
