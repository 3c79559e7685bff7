"""What a task's data and results are: `Target` (a table's target column as labels) and `Evaluation`
(a whole split's metrics, with the outputs and labels its figures need)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Target:
    """A table's target column as a task's labels."""

    values: np.ndarray  # (N, ...) labels: class indices, numbers, multi-hot rows...
    classes: list[str]  # the names of the outputs (a regression: the target column's name)
    why: str = ""  # how the task was chosen, for the run's first line
    task: str = ""  # the task's name, filled in by the reader that chose it


@dataclass
class Evaluation:
    """A whole split's results: every metric of the task, and what the task's figures and reports
    need (the outputs and labels, on the device they were computed on)."""

    values: dict[str, float]  # the task's metrics, "loss" first
    samples: int
    outputs: Any = field(default=None, repr=False)
    labels: Any = field(default=None, repr=False)

    def metrics(self) -> dict[str, float]:
        """The figures metrics.csv and summary.json record, by the task's metric names."""
        return dict(self.values)

    def __getattr__(self, name: str) -> float:
        # `evaluation.accuracy`, `evaluation.r2`: the metrics by name (only those the task has).
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)
