"""The results of a comparison, cell by cell: each cell's finished runs and the seeds that diverged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tocha.experiments.grid import cell_label
from tocha.experiments.stats import Spread, spread
from tocha.runs import RunSummary
from tocha.tasks import Task, task_named


@dataclass
class RunRecord:
    seed: int
    run_dir: Path
    summary: RunSummary
    history: list[dict[str, float]]


@dataclass
class CellResult:
    cell: dict[str, Any]
    runs: list[RunRecord] = field(default_factory=list)  # finished runs
    diverged: list[int] = field(default_factory=list)  # seeds whose loss became NaN/inf

    @property
    def label(self) -> str:
        return cell_label(self.cell)

    def final(self, metric: str) -> list[float]:
        """The test `metric` of each finished run (scored once, on its kept weights)."""
        return [r.summary.final_test[metric] for r in self.runs]

    def val(self, metric: str) -> list[float]:
        """The validation `metric` of each finished run at its kept epoch (what a cell is chosen on)."""
        return [r.summary.val[metric] for r in self.runs]

    @property
    def validated(self) -> bool:
        """Whether the runs have a validation split (then they are ranked on it, else on test)."""
        return bool(self.runs) and all(r.summary.val for r in self.runs)

    def chosen_on(self, metric: str) -> list[float]:
        """The scores the cell is ranked on: validation where the runs have it, else test."""
        return self.val(metric) if self.validated else self.final(metric)

    @property
    def train_seconds(self) -> list[float]:
        return [r.summary.train_seconds for r in self.runs]

    @property
    def task(self) -> Task:
        """What the runs' outputs mean (their summaries name it)."""
        first = self.runs[0].summary if self.runs else None
        return task_named(first.task if first else "", first.final_test if first else {})

    @property
    def metric(self) -> str:
        """What the cell is ranked by: its task's primary metric."""
        return self.task.primary

    @property
    def score(self) -> Spread:
        return spread(self.final(self.metric))


def summary_task(summary: RunSummary) -> Task:
    """The task a finished run's summary names."""
    return task_named(summary.task, summary.final_test)
