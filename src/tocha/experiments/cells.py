"""The results of a comparison, cell by cell: each cell's finished runs and the seeds that diverged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tocha.experiments.grid import cell_label
from tocha.experiments.stats import Spread, spread
from tocha.runs import RunSummary


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
        """The final test `metric` of each finished run."""
        return [r.summary.final_test[metric] for r in self.runs]

    @property
    def train_seconds(self) -> list[float]:
        return [r.summary.train_seconds for r in self.runs]

    @property
    def metric(self) -> str:
        """What the cell is ranked by: test accuracy, or a regression's R²."""
        return score_metric(self.runs[0].summary.final_test) if self.runs else "accuracy"

    @property
    def score(self) -> Spread:
        return spread(self.final(self.metric))


def score_metric(final_test: dict[str, float]) -> str:
    return "accuracy" if "accuracy" in final_test else "r2"


def score_text(metric: str, value: float) -> str:
    """`test accuracy 91.20%` or `test R² 0.4512`."""
    return f"test accuracy {100 * value:.2f}%" if metric == "accuracy" else f"test R² {value:.4f}"
