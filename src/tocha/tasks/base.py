"""`Task`: what a model's outputs mean, from the loss to the printed report, and the registry of tasks.

Everything that differs between classification, regression or a task of one's own is a method of
the task: how a table's target column becomes labels, how many outputs the model needs, the loss
and the running sums, the metrics, the epoch and done lines, the figures, what `predict` answers,
how `compare` ranks and words a score, and what an export says it outputs. The loop, evaluation,
the run records, compare, predict and export ask the task; none of them looks at a metric's name
or a result's type.

A task module imports torch only inside the methods that compute (the loss, the sums, the
evaluation): reading what a task means (compare's table, an ONNX file's predictions) stays
torch-free. `register_task` adds a task; `make_task` builds one by name.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tocha.errors import TochaError

if TYPE_CHECKING:
    import torch
    from torch import nn

MAX_CLASS_WEIGHT = 1e6  # a class weighed a million times the others is a typo, not a choice


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


class Task:
    """The base every task builds on. A task of one's own sets the class attributes, implements
    `read_target`, `output_size`, `make_loss` and `evaluate`, and overrides the wording where the
    defaults (the primary metric as a plain number) do not fit."""

    name: ClassVar[str] = ""  # what `data.task` calls it
    losses: ClassVar[tuple[str, ...]] = ()  # the names `train.loss` may take; the first is `auto`'s
    metrics: ClassVar[tuple[str, ...]] = ("loss",)  # "loss" first; metrics.csv has train_<m>, test_<m>
    primary: ClassVar[str] = "loss"  # what `compare` ranks by: higher is better
    lower_is_better: ClassVar[tuple[str, ...]] = ("loss",)  # the metrics that improve as they fall
    stratified: ClassVar[bool] = False  # a validation carve keeps each label's share (classes)
    bounds: ClassVar[tuple[float, float]] = (-math.inf, math.inf)  # the primary metric's possible range
    result_figure: ClassVar[tuple[str, str]] = ("", "")  # a run's figure of its results: file, caption
    output_name: ClassVar[str] = "output"  # what one of the model's outputs is called (a logit...)
    decision_name: ClassVar[str] = "decision"  # what `agreement` compares (the top-1 class...)

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
        """(outputs, labels) -> the batch's mean loss; built on first use (it imports torch)."""
        return self.make_loss(self.loss_name, self.label_smoothing)

    @classmethod
    def takes_mixed_labels(cls, loss: str) -> bool:
        """Whether `loss` takes MixUp's and CutMix's labels: each class's share (B, classes)."""
        return False

    @classmethod
    def takes_class_weights(cls, loss: str) -> bool:
        """Whether `loss` can weigh each class's samples (`--class-weights`)."""
        return False

    def class_weights_for(self, counts: list[int], asked: str) -> list[float]:
        """`--class-weights`: `balanced` (N / (K x count), scikit-learn's rule) or one weight per
        class, each above 0."""
        if not self.takes_class_weights(self.loss_name):
            raise TochaError(f"class weights weigh the cross_entropy or nll loss of classification, not "
                             f"{self.loss_name} ({self.name})")  # fmt: skip
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
                    classes: list[str]) -> np.ndarray:  # fmt: skip
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

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        """The epoch's metrics from its sums: the one read from the device per epoch."""
        return {"loss": sums["loss_sum"].item() / samples}

    # -- results ----------------------------------------------------------------------------------
    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        """Every metric of a whole split, from the model's outputs (as the inference model gives
        them) and the split's labels."""
        raise NotImplementedError

    def format(self, metric: str, value: float) -> str:
        """One metric's value as the task writes it (accuracy in %, others as numbers)."""
        return f"{value:.4g}"

    def headline(self, evaluation: Evaluation) -> str:
        """The done line's and evaluate's summary of a split."""
        return ", ".join(f"{m} {self.format(m, v)}" for m, v in evaluation.metrics().items())

    def epoch_scores(self, row: dict[str, float], split: str) -> str:
        """An epoch line's scores of `split` (train, test) beside its loss."""
        return f"{self.primary} {self.format(self.primary, row[f'{split}_{self.primary}'])}"

    def score_text(self, value: float) -> str:
        """`compare`'s and `export`'s words for a primary test metric."""
        return f"test {self.primary} {self.format(self.primary, value)}"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        """compare's table: a split's score column's header, the factor its numbers are shown at, and
        their decimals."""
        return f"{split} {self.primary} (mean ± std)", 1.0, 4

    def failed_to_learn(self, mean: float, classes: int) -> str:
        """A note for a compared cell no better than guessing, or ""."""
        return ""

    def classes_counted(self, classes: list[str]) -> int:
        """summary.json's `classes`: how many the run tells apart (chance level is 1 / classes)."""
        return len(classes)

    def figure_files(self) -> tuple[str, ...]:
        """The files `run_figures` writes into a run folder."""
        return ("curves.png", self.result_figure[0]) if self.result_figure[0] else ("curves.png",)

    def run_figures(self, history: list[dict[str, float]], final: Evaluation, classes: list[str],
                    title: str, kept_epoch: int = 0) -> dict[str, bytes]:  # fmt: skip
        """A finished run's figures (PNG bytes by file name): learning curves of the loss and the
        primary metric (the kept epoch marked), and the task's picture of its results on the test
        split."""
        from tocha.figures.plots import plot_curves

        figures = {"curves.png": plot_curves(history, title, self.primary, *self.curve_axis(), kept_epoch)}
        picture = self.result_picture(final, classes, f"{title}: test {self.picture_caption(final)}")
        if picture is not None:
            figures[self.result_figure[0]] = picture
        return figures

    def curve_axis(self) -> tuple[float, str]:
        """How the primary metric is drawn: the factor and the axis label."""
        return 1.0, self.primary

    def result_picture(self, evaluation: Evaluation, classes: list[str], title: str) -> bytes | None:
        """The picture of a split's results (`result_figure`), PNG bytes; None for none."""
        return None

    def picture_caption(self, evaluation: Evaluation) -> str:
        """The result picture's words on the split's score."""
        return self.headline(evaluation)

    def report(self, evaluation: Evaluation, classes: list[str], out_dir: Path, title: str,
               images: torch.Tensor | None = None) -> dict[str, Any]:  # fmt: skip
        """`tocha evaluate`'s record (evaluation.json) of a split, its picture drawn into `out_dir`."""
        picture = self.result_picture(evaluation, classes, f"{title}: {self.picture_caption(evaluation)}")
        if picture is not None:
            from tocha.files import atomic_write

            atomic_write(out_dir / self.result_figure[0], lambda f: f.write(picture))
        return {"samples": evaluation.samples, **evaluation.metrics()}

    def report_text(self, evaluation: Evaluation, classes: list[str]) -> str:
        """What `tocha evaluate` prints below its headline ("" for nothing)."""
        return ""

    # -- a trained model's answers ----------------------------------------------------------------
    def output_layer(self) -> nn.Module:
        """What the inference model applies to the model's outputs (a regression: back to the
        target's units); part of every export's graph."""
        from torch import nn

        return nn.Identity()

    def output_words(self) -> str:
        """An export's description of its output."""
        return "outputs (N, K), float32"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        """`predict`'s answer for each input, from the inference model's outputs (N, ...)."""
        return [row.tolist() for row in outputs]

    def answer_key(self, classes: list[str]) -> str:
        """The name an answer goes by beside its input's path or row (`predict --json`)."""
        return "outputs"

    def answer_text(self, answer: Any) -> str:
        """One answer as `tocha predict` prints it after the input's name."""
        return json.dumps(answer)

    def answer_columns(self, classes: list[str]) -> list[str]:
        """The CSV columns of table rows' answers, after `row`."""
        return [self.answer_key(classes)]

    def answer_cells(self, answer: Any) -> list[str]:
        return [self.answer_text(answer)]

    def agreement(self, outputs: np.ndarray, reference: np.ndarray, atol: float,
                  rtol: float) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
        """An export's parity beyond the tolerance: per input, whether the exported file's decision
        is tocha's, and whether tocha's own outputs tie within the tolerance (None: no decision)."""
        return None

    def export_score(self, outputs: np.ndarray, labels: np.ndarray) -> float | None:
        """The primary metric of outputs, for an export's metadata and parity report (None: none)."""
        return None


TASKS: dict[str, type[Task]] = {}


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
