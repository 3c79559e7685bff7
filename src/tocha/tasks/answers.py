"""`Answers`: a task's answers for named inputs, as `tocha predict` prints them (lines, CSV, JSON)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from tocha.tasks.base import Task


@dataclass
class Answers:
    """A task's answers for named inputs (image paths, or a table's rows numbered from 1): what
    `tocha predict` prints, as lines, CSV or JSON."""

    task: Task
    classes: list[str]
    items: list[dict[str, Any]]  # {"path": ..., key: answer} or {"row": ..., key: answer}

    def lines(self) -> list[str]:
        """`name: answer` per input."""
        key = self.task.answer_key(self.classes)
        return [
            f"{item.get('path', item.get('row'))}: {self.task.answer_text(item[key])}" for item in self.items
        ]

    def csv(self) -> str:
        """`row,` and the task's columns, a line per row (quoted as the csv module quotes)."""
        key = self.task.answer_key(self.classes)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["row", *self.task.answer_columns(self.classes)])
        writer.writerows([str(item["row"]), *self.task.answer_cells(item[key])] for item in self.items)
        return buffer.getvalue()
