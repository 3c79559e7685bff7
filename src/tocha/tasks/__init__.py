"""Tasks: what the model's outputs mean, from the loss to the printed report (see `tasks.base`).

Classification (images and tables), regression (tables) and multi-label classification (sets of
labels) are registered here; a task of one's
own is a `Task` subclass passed to `register_task`. Everything else reaches a task through
`make_task` / `task_of` and the `Task` interface. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from tocha.errors import TochaError
from tocha.tasks.answers import Answers, check_top_k
from tocha.tasks.base import TASKS, Evaluation, Target, Task, is_given_loss, register_task, task_class
from tocha.tasks.classification import ClassificationTask
from tocha.tasks.forecast import ForecastTask
from tocha.tasks.multilabel import MultiLabelTask
from tocha.tasks.next_token import NextTokenTask
from tocha.tasks.regression import RegressionTask

AUTO = "auto"  # a config's task before its data is read: a table's target decides it, images classify
DEFAULT = ClassificationTask.name


def make_task(name: str = DEFAULT, loss: str = "auto", label_smoothing: float = 0.0,
              table: dict[str, Any] | None = None,
              *, class_weights: list[float] | None = None) -> Task:  # fmt: skip
    """The task `name` with the named loss; `table`: a table's record (a regression's scale);
    `class_weights`: each class's weight in the loss."""
    return task_class(DEFAULT if name == AUTO else name).build(loss, label_smoothing, table, class_weights)


def task_of(config: Any, table: dict[str, Any] | None = None) -> Task:
    """The task of a resolved run config (`RunConfig`); `table`: its data's table record."""
    weights = config.train.class_weights  # resolved: a weight per class, written out
    return make_task(config.data.task, config.train.loss, config.train.label_smoothing, table,
                     class_weights=[float(w) for w in weights.split(",")] if weights else None)  # fmt: skip


def check_loss(loss: str, task: str) -> None:
    """The loss exists for the task (for any task while a table's task is not known yet)."""
    if task != AUTO:
        task_class(task).resolve_loss(loss)
    elif loss != "auto" and not is_given_loss(loss) and not any(loss in cls.losses for cls in TASKS.values()):
        known = "; ".join(f"{name}: {', '.join(cls.losses)}" for name, cls in TASKS.items())
        raise TochaError(f"unknown loss {loss!r}; {known}")


def task_named(name: str, final_test: dict[str, float]) -> Task:
    """The task a finished run's summary names; summaries written before tasks were recorded have
    none, and their metrics tell (R² only regression has)."""
    if not name:
        name = RegressionTask.name if "r2" in final_test else ClassificationTask.name
    return make_task(name)


__all__ = [
    "NextTokenTask",
    "ForecastTask",
    "AUTO",
    "DEFAULT",
    "TASKS",
    "Answers",
    "ClassificationTask",
    "MultiLabelTask",
    "Evaluation",
    "RegressionTask",
    "Target",
    "Task",
    "check_loss",
    "check_top_k",
    "is_given_loss",
    "make_task",
    "register_task",
    "task_class",
    "task_named",
    "task_of",
]
