"""Tasks: what the model's outputs mean (the loss, the running sums, the metrics).

Classification (images and tables) and regression (tables); the training loop, evaluation and the
run records reach them only through the `Task` interface below.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from tocha.errors import TochaError
from tocha.tasks.classification import LOSSES as CLASSIFICATION_LOSSES
from tocha.tasks.classification import ClassificationTask
from tocha.tasks.metrics import Evaluation
from tocha.tasks.regression import LOSSES as REGRESSION_LOSSES
from tocha.tasks.regression import RegressionTask


class Task(Protocol):
    metrics: tuple[str, ...]  # names of the metrics, "loss" first
    primary: str  # the metric a comparison ranks by

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def prepare(self, targets: torch.Tensor) -> torch.Tensor: ...  # the training split's, once

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]: ...

    def add(
        self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor
    ) -> None: ...

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]: ...

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor) -> Evaluation: ...


def resolve_loss(task: str, loss: str) -> str:
    """`auto`: cross-entropy for classification, MSE for regression."""
    if loss == "auto":
        return "mse" if task == "regression" else "cross_entropy"
    return loss


def make_task(loss: str = "auto", label_smoothing: float = 0.0, task: str = "classification",
              target_scale: tuple[float, float] = (0.0, 1.0)) -> Task:  # fmt: skip
    """The task a training config describes, with the named loss. `task` "auto" (a config not yet
    resolved against its data, or an image run's) is classification; `target_scale`: regression."""
    loss = resolve_loss(task, loss)
    if task == "regression":
        if label_smoothing:
            raise TochaError("label_smoothing is for classification, not regression")
        return RegressionTask(loss, *target_scale)
    return ClassificationTask(loss, label_smoothing)


def task_of(config: Any, table: dict[str, Any] | None = None) -> Task:
    """The task of a resolved run config (`RunConfig`); `table`: its data's table information,
    which holds a regression target's scale."""
    scale = tuple(table["target_scale"]) if table else (0.0, 1.0)
    task = "classification" if config.data.task == "auto" else config.data.task  # image runs: auto
    return make_task(config.train.loss, config.train.label_smoothing, task, scale)  # type: ignore[arg-type]


def check_loss(loss: str, task: str) -> None:
    """The loss exists for the task (for either, while a table's task is not known yet)."""
    if task in ("classification", "regression"):
        make_task(loss, 0.0, task)
    elif loss not in ("auto", *CLASSIFICATION_LOSSES, *REGRESSION_LOSSES):
        raise TochaError(f"unknown loss {loss!r}; classification: {', '.join(CLASSIFICATION_LOSSES)}; "
                         f"regression: {', '.join(REGRESSION_LOSSES)}")  # fmt: skip


__all__ = [
    "ClassificationTask",
    "RegressionTask",
    "Task",
    "check_loss",
    "make_task",
    "resolve_loss",
    "task_of",
]
