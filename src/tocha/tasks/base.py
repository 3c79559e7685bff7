"""`Task`: what a model's outputs mean, from the loss to the printed report, and the registry of tasks.

Everything that differs between classification, regression or a task of one's own is a method of
the task: how a table's target column becomes labels, how many outputs the model needs, the loss
and the running sums, the metrics, the epoch and done lines, the figures, what `predict` answers,
how `compare` ranks and words a score, and what an export says it outputs. The loop, evaluation,
the run records, compare, predict and export ask the task; none of them looks at a metric's name
or a result's type. Three files by job: what a task computes is here (names, labels, the loss, the
sums, the metrics), how its results are worded and drawn in `tasks.wording`, and what a trained
model answers in `tasks.answering`; `Task` joins them.

A task module imports torch only inside the methods that compute (the loss, the sums, the
evaluation): reading what a task means (compare's table, an ONNX file's predictions) stays
torch-free. `register_task` adds a task; `make_task` builds one by name.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tocha.errors import TochaError
from tocha.tasks.answering import TaskAnswering
from tocha.tasks.results import Evaluation, Target
from tocha.tasks.wording import TaskWording

if TYPE_CHECKING:
    import torch

MAX_CLASS_WEIGHT = 1e6  # a class weighed a million times the others is a typo, not a choice


class Task(TaskWording, TaskAnswering):
    """The base every task builds on. A task of one's own sets the class attributes, implements
    `read_target`, `output_size`, `make_loss` and `evaluate`, and overrides the wording where the
    defaults (the primary metric as a plain number) do not fit."""

    name: ClassVar[str] = ""  # what `data.task` calls it
    losses: ClassVar[tuple[str, ...]] = ()  # the names `train.loss` may take; the first is `auto`'s
    metrics: ClassVar[tuple[str, ...]] = ("loss",)  # "loss" first; metrics.csv has train_<m>, test_<m>
    held_out: ClassVar[tuple[str, ...]] = ()  # metrics of a whole held-out split only (val_<m>, test_<m>)
    primary: ClassVar[str] = "loss"  # what `compare` ranks by: higher is better
    lower_is_better: ClassVar[tuple[str, ...]] = ("loss",)  # the metrics that improve as they fall
    stratified: ClassVar[bool] = False  # a validation carve keeps each label's share (classes)
    bounds: ClassVar[tuple[float, float]] = (-math.inf, math.inf)  # the primary metric's possible range
    result_figure: ClassVar[tuple[str, str]] = ("", "")  # a run's figure of its results: file, caption
    output_name: ClassVar[str] = "output"  # what one of the model's outputs is called (a logit...)
    decision_name: ClassVar[str] = "decision"  # what `agreement` compares (the top-1 class...)
    per_position: ClassVar[bool] = False  # the model answers at each position of a sequence (N, T, outputs)

    def __init__(self, loss: str = "auto", label_smoothing: float = 0.0,
                 class_weights: list[float] | None = None) -> None:  # fmt: skip
        self.loss_name = self.resolve_loss(loss)
        if label_smoothing and not self.takes_label_smoothing(self.loss_name):
            raise TochaError(f"label_smoothing works with the cross_entropy loss of classification, not "
                             f"{self.loss_name} ({self.name})")  # fmt: skip
        if class_weights and not self.takes_class_weights(self.loss_name):
            raise TochaError(f"class weights weigh the cross_entropy or nll loss of classification, not "
                             f"{self.loss_name} ({self.name})")  # fmt: skip
        self.label_smoothing, self.class_weights = label_smoothing, class_weights

    @functools.cached_property
    def loss(self) -> Any:
        """(outputs, labels) -> the batch's mean loss; built on first use (it imports torch). A loss
        given in Python (`python:NAME`) is the object's (`with_loss`); where this process was not
        given it (`tocha evaluate` of such a run), the loss is not scored: NaN."""
        if is_given_loss(self.loss_name):
            return unscored_loss
        return self.make_loss(self.loss_name, self.label_smoothing)

    def with_loss(self, loss: Any) -> Task:
        """This task with the loss given in Python (`tocha.train(loss=...)`) as its loss."""
        self.__dict__["loss"] = self.given_loss(loss)  # what `loss` (a cached property) answers from now on
        return self

    def given_loss(self, loss: Any) -> Any:
        """A loss given in Python as this task calls it: (outputs, targets as `prepare` made them)."""
        return loss

    @classmethod
    def takes_mixed_labels(cls, loss: str) -> bool:
        """Whether `loss` takes MixUp's and CutMix's labels: each class's share (B, classes)."""
        return False

    @classmethod
    def takes_class_weights(cls, loss: str) -> bool:
        """Whether `loss` can weigh each class's samples (`--class-weights`)."""
        return False

    @classmethod
    def class_weights_for(cls, loss: str, counts: list[int], asked: str) -> list[float]:
        """`--class-weights` for the loss `loss`: `balanced` (N / (K x count), scikit-learn's rule)
        or one weight per class, each above 0."""
        if not cls.takes_class_weights(loss):
            raise TochaError(f"class weights weigh the cross_entropy or nll loss of classification, not "
                             f"{loss} ({cls.name})")  # fmt: skip
        if asked == "balanced":
            if min(counts) == 0:
                raise TochaError("--class-weights balanced: a class has no training samples")
            return [sum(counts) / (len(counts) * n) for n in counts]
        try:
            weights = [float(w) for w in asked.split(",")]
        except ValueError:
            weights = []
        if len(weights) != len(counts) or not all(0 < w < MAX_CLASS_WEIGHT for w in weights):
            raise TochaError(f"--class-weights {asked}: give balanced, or {len(counts)} weights above 0 and "
                             f"below {MAX_CLASS_WEIGHT:,.0f}, one per class, in the classes' "
                             "order")  # fmt: skip
        return weights

    @classmethod
    def build(cls, loss: str, label_smoothing: float, table: dict[str, Any] | None,
              class_weights: list[float] | None = None) -> Task:  # fmt: skip
        """The task of a run: its loss, and what its table's record holds for it (`table_info`)."""
        return cls(loss, label_smoothing, class_weights)

    # -- names ------------------------------------------------------------------------------------
    @classmethod
    def resolve_loss(cls, loss: str) -> str:
        """`auto` is the task's first loss; any other must be one of its losses."""
        if loss == "auto":
            return cls.losses[0]
        if is_given_loss(loss):  # a loss module or function given in Python: any task's
            return loss
        if loss not in cls.losses:
            known = any(loss in other.losses for other in TASKS.values())  # another task's loss
            what = f"loss {loss!r} is not a {cls.name} loss" if known else f"unknown loss {loss!r}"
            raise TochaError(f"{what}; choose from {', '.join(cls.losses)}")
        return loss

    @classmethod
    def takes_label_smoothing(cls, loss: str) -> bool:
        return False

    @classmethod
    def higher_is_better(cls, metric: str) -> bool:
        """Whether `metric` improves as it rises (accuracy, R²) rather than falls (a loss, RMSE)."""
        return metric not in cls.lower_is_better

    # -- the data ---------------------------------------------------------------------------------
    def read_target(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str) -> Target:
        """A table's target column as labels. `cells`: its text, `numbers`: the same as float64
        (NaN where missing), or None when it is text."""
        raise NotImplementedError

    def unusable_targets(self, cells: list[str], missing: np.ndarray) -> np.ndarray:
        """The rows whose target cell this task cannot read: by default the missing ones (`missing`:
        the table reader's missing markers); a task for which an empty cell means something says so."""
        return missing

    def read_labels(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str,
                    *, classes: list[str]) -> np.ndarray:  # fmt: skip
        """Another table's target column as the labels of a model trained for `classes` (`tocha
        evaluate --data other.csv`)."""
        target = self.read_target(cells, numbers, column, where)
        if target.classes != classes:
            raise TochaError(f"{where}: its {column} holds {', '.join(target.classes)}; the model was "
                             f"trained for {', '.join(classes)}")  # fmt: skip
        return target.values

    @classmethod
    def check_labels(cls, labels: torch.Tensor, classes: list[str], where: str) -> None:
        """Refuse labels that do not fit the classes (an image folder's or a reader's mistake)."""

    def output_size(self, classes: list[str]) -> int:
        """How many outputs per sample the model needs."""
        raise NotImplementedError

    def table_info(self, train_labels: np.ndarray) -> dict[str, Any]:
        """What a checkpoint keeps beyond the table's encoding (a regression: the target's scale)."""
        return {}

    @classmethod
    def table_problem(cls, table: dict[str, Any]) -> str | None:
        """What is wrong with a trained table's record of this task's own (`table_info`), or None."""
        return None

    def prepare(self, labels: torch.Tensor) -> torch.Tensor:
        """The training split's labels as the loss takes them, once before the first epoch."""
        return labels

    # -- training ---------------------------------------------------------------------------------
    def make_loss(self, name: str, label_smoothing: float) -> Any:
        raise NotImplementedError

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        """An epoch's running sums, on the device. The base keeps the summed loss."""
        import torch

        return {"loss_sum": torch.zeros((), device=device)}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            labels: torch.Tensor) -> None:  # fmt: skip
        """Add one batch to the sums without reading anything back (no wait for the device)."""
        sums["loss_sum"].add_(loss.detach(), alpha=len(labels))

    def add_steps(self, sums: dict[str, torch.Tensor], steps: list[tuple[torch.Tensor, ...]]) -> None:
        """Add several steps' (loss, outputs, labels) at once, as `add` of each in turn would: the
        same sums to the last bit (`training.tally` holds a few dozen steps and settles them here)."""
        for loss, outputs, labels in steps:
            self.add(sums, loss, outputs, labels)

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        """The epoch's metrics from its sums: the one read from the device per epoch."""
        return {"loss": sums["loss_sum"].item() / samples}

    # -- results ----------------------------------------------------------------------------------
    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        """Every metric of a whole split, from the model's outputs (as the inference model gives
        them) and the split's labels."""
        raise NotImplementedError


TASKS: dict[str, type[Task]] = {}


def is_given_loss(name: str) -> bool:
    """Whether a loss's name is one given in Python (`python:NAME`, `training.pieces`)."""
    return name.startswith("python:")


def unscored_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of a run whose loss was given in Python, where this process has not got it: NaN."""
    import torch

    return torch.full((), float("nan"), device=outputs.device)


def register_task(cls: type[Task]) -> type[Task]:
    """Make a task known by its name (`data.task`, checkpoints, summaries)."""
    if not cls.name or not cls.losses or cls.metrics[0] != "loss" or cls.primary not in cls.metrics:
        raise ValueError(f"{cls.__name__}: a task needs a name, losses, metrics starting with loss, "
                         "and its primary metric among them")  # fmt: skip
    TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except KeyError:
        raise TochaError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}") from None
