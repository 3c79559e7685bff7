"""Forecasting (`--task forecast`, `data.series`): a regression of the target column's next
`horizon` values from the `window` rows before them, scored in the target's own units (MSE, RMSE,
MAE, R² over every step ahead). The task is regression's; its name keeps the data's rule (windows
cut in time order) in every record, so a resume, an evaluation or a forecast reads the series again."""

from __future__ import annotations

from typing import Any

import numpy as np

from tocha.tasks.base import register_task
from tocha.tasks.regression import RegressionTask


@register_task
class ForecastTask(RegressionTask):
    name = "forecast"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        """Each window's forecast: its next values, one per step ahead, in the target's units."""
        return [[float(v) for v in row] for row in outputs.reshape(len(outputs), -1)]

    def answer_key(self, classes: list[str]) -> str:
        return "forecast"

    def answer_columns(self, classes: list[str]) -> list[str]:
        return list(classes)  # target[t+1], target[t+2], ...

    def answer_cells(self, answer: Any) -> list[str]:
        return [f"{v:.6g}" for v in answer]
