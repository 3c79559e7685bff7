"""Tasks: what the model's outputs mean (the loss, the running sums, the metrics).

Classification is the one task today; the training loop, evaluation and the run records reach it
only through the `Task` interface below, so another task (regression) plugs in beside it.
"""

from __future__ import annotations

from typing import Protocol

import torch

from tocha.analysis.metrics import Evaluation
from tocha.tasks.classification import ClassificationTask


class Task(Protocol):
    metrics: tuple[str, ...]  # names of the metrics, "loss" first
    primary: str  # the metric a comparison ranks by

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]: ...

    def add(
        self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor
    ) -> None: ...

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]: ...

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor) -> Evaluation: ...


def make_task(loss: str, label_smoothing: float = 0.0) -> Task:
    """The task a training config describes (classification, with the named loss)."""
    return ClassificationTask(loss, label_smoothing)


__all__ = ["ClassificationTask", "Task", "make_task"]
