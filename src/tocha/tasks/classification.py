"""Classification: integer labels, one output per class; loss and accuracy (correct / total).

The task owns what the training loop and evaluation must not assume: the loss, the sums kept on
the device during an epoch, the metrics computed from a model's outputs and the labels, and how the
outputs are read afterwards (softmax probabilities, the top-k classes).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tocha.errors import TochaError
from tocha.tasks.answers import check_top_k
from tocha.tasks.base import Evaluation, Target, Task, register_task

if TYPE_CHECKING:
    import torch

LOSSES = ("cross_entropy", "nll", "mse")

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def make_loss(name: str, label_smoothing: float = 0.0, class_weights: list[float] | None = None) -> LossFn:
    """`cross_entropy` on logits; `nll` on log-probabilities (pair it with the log_softmax head);
    `mse` between softmax probabilities and one-hot labels. `class_weights`: each class's weight
    (the mean is then weighted: PyTorch's `weight=`)."""
    import torch
    from torch.nn import functional as F

    if name not in LOSSES:
        raise TochaError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if label_smoothing and name != "cross_entropy":
        raise TochaError(f"label_smoothing works with the cross_entropy loss, not {name}")
    if class_weights is not None:
        weights = torch.tensor(class_weights)

        def weight(out: torch.Tensor) -> torch.Tensor:
            return weights.to(out.device, out.dtype)  # a no-op once they are there

        if name == "cross_entropy":
            return lambda out, y: F.cross_entropy(out, y, weight=weight(out), label_smoothing=label_smoothing)
        return lambda out, y: F.nll_loss(out, y, weight=weight(out))
    if name == "cross_entropy":
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)
    if name == "nll":
        return F.nll_loss
    return lambda out, y: F.mse_loss(out.softmax(dim=1), F.one_hot(y, out.shape[1]).to(out.dtype))


def class_names(cells: list[str], numbers: np.ndarray | None) -> tuple[list[str], list[str]]:
    """The sorted class names of a column and each cell's name: integers, read exactly however large
    (2**53 and 2**53 + 1 are two classes), sort as numbers (0, 1, 10) under their plain names (`1.0`
    is `1`); anything else as text."""
    if numbers is not None:
        exact = [exact_integer(cell) for cell in cells]
        if None not in exact:
            return [str(v) for v in sorted(set(exact))], [str(v) for v in exact]  # type: ignore[type-var]
    return sorted(set(cells)), cells


def exact_integer(cell: str) -> int | None:
    """The integer a number's text is, exactly (no float in between), or None."""
    try:
        value = Decimal(cell.replace(",", "."))
    except InvalidOperation:
        return None
    return int(value) if value.is_finite() and value == value.to_integral_value() else None


def softmax(outputs: np.ndarray) -> np.ndarray:
    """Probabilities of each row, in float64: works for logits and log-probabilities (the
    log_softmax head) alike."""
    logits = outputs.astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def ranked(probs: np.ndarray, classes: list[str], top_k: int) -> list[dict[str, Any]]:
    """One input's top-k classes, most probable first, in the shape of `tocha predict --json`."""
    best = np.argsort(-probs, kind="stable")[: min(top_k, len(classes))]
    return [{"class": classes[i], "index": int(i), "probability": float(probs[i])} for i in best]


@register_task
class ClassificationTask(Task):
    """What classification means to the loop, to evaluation, to the records and to predict."""

    name = "classification"
    losses = LOSSES
    metrics = ("loss", "accuracy")  # metrics.csv has train_<m> and test_<m> for each
    held_out = ("f1",)  # macro F1 needs a whole split's confusion matrix: validation and test only
    primary = "accuracy"  # what compare ranks by; higher is better
    stratified = True  # a validation carve keeps each class's share
    bounds = (0.0, 1.0)
    result_figure = ("confusion_matrix.png", "Confusion matrix")
    output_name = "logit"
    decision_name = "top-1"

    @classmethod
    def takes_label_smoothing(cls, loss: str) -> bool:
        return loss == "cross_entropy"

    @classmethod
    def takes_class_weights(cls, loss: str) -> bool:
        return loss in ("cross_entropy", "nll")

    @classmethod
    def takes_mixed_labels(cls, loss: str) -> bool:
        return loss == "cross_entropy"  # PyTorch's cross_entropy takes class shares as its target

    def make_loss(self, name: str, label_smoothing: float) -> LossFn:
        # (outputs (B, classes), labels (B,)) -> mean loss
        return make_loss(name, label_smoothing, self.class_weights)

    # -- the data
    def read_target(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str) -> Target:
        distinct, keys = class_names(cells, numbers)
        if len(distinct) < 2:
            raise TochaError(
                f"{where}: the target {column!r} has one class ({distinct[0]!r}): nothing to learn"
            )
        index = {name: i for i, name in enumerate(distinct)}
        return Target(np.array([index[k] for k in keys], dtype=np.int64), distinct)

    def read_labels(
        self, cells: list[str], numbers: np.ndarray | None, column: str, where: str, *, classes: list[str]
    ) -> np.ndarray:
        """The indices of the model's classes; rows of one class are fine to evaluate on."""
        _, keys = class_names(cells, numbers)
        index = {name: i for i, name in enumerate(classes)}
        unknown = sorted(set(keys) - set(index))
        if unknown:
            raise TochaError(
                f"{where}: classes {', '.join(unknown)} are not the model's: {', '.join(classes)}"
            )
        return np.array([index[k] for k in keys], dtype=np.int64)

    @classmethod
    def check_labels(cls, labels: torch.Tensor, classes: list[str], where: str) -> None:
        if labels.ndim != 1 or labels.is_floating_point():
            raise TochaError(
                f"{where}: classification labels are class indices (N,), not {tuple(labels.shape)}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise TochaError(f"{where} labels outside 0..{len(classes) - 1}")

    def output_size(self, classes: list[str]) -> int:
        return len(classes)

    # -- training
    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Summed per-sample loss and correct answers, on the device."""
        import torch

        return {
            "loss_sum": torch.zeros((), device=device),
            "correct": torch.zeros((), dtype=torch.long, device=device),
        }

    def add(
        self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor
    ) -> None:
        sums["loss_sum"].add_(loss, alpha=len(labels))
        if labels.is_floating_point():  # MixUp / CutMix shares: right when the top class is the larger share
            labels = labels.argmax(dim=1)
        sums["correct"].add_((outputs.argmax(dim=1) == labels).sum())

    def add_steps(self, sums: dict[str, torch.Tensor], steps: list[tuple[torch.Tensor, ...]]) -> None:
        """`add` of each step, the right answers counted once for them all: the losses are added
        step by step, in order, as floats must be for the same last bit, while a count of right
        answers is a whole number, the same however it is grouped (three tensor operations a step
        fewer: a few percent of a small model's step). A subclass's own `add` is called as it is."""
        if type(self).add is not ClassificationTask.add or "add" in vars(self) or not steps:
            return super().add_steps(sums, steps)
        import torch  # (the module is read before torch is: `tocha --help` stays fast)

        for loss, _, labels in steps:
            sums["loss_sum"].add_(loss, alpha=len(labels))
        outputs = torch.cat([out for _, out, _ in steps])
        labels = torch.cat([y.argmax(dim=1) if y.is_floating_point() else y for _, _, y in steps])
        sums["correct"].add_((outputs.argmax(dim=1) == labels).sum())

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        loss_sum, correct = sums["loss_sum"].item(), sums["correct"].item()
        return {"loss": loss_sum / samples, "accuracy": correct / samples}

    # -- results
    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        """Loss, accuracy and confusion matrix of a whole split's outputs."""
        from tocha.tasks.metrics import evaluate_outputs

        return evaluate_outputs(outputs, labels, self.loss)

    def format(self, metric: str, value: float) -> str:
        return f"{100 * value:.2f}%" if metric == "accuracy" else f"{value:.4f}"

    def headline(self, evaluation: Evaluation) -> str:
        return f"accuracy {self.format('accuracy', evaluation.accuracy)}, loss {evaluation.loss:.4f}"

    def epoch_scores(self, row: dict[str, float], split: str) -> str:
        return f"acc {self.format('accuracy', row[f'{split}_accuracy'])}"

    def score_text(self, value: float) -> str:
        return f"test accuracy {self.format('accuracy', value)}"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        return f"{split} acc % (mean ± std)", 100.0, 2

    def failed_to_learn(self, mean: float, classes: int) -> str:
        """Accuracy at chance level (1 / classes, within a point)."""
        if classes and mean <= 1 / classes + 0.01:
            return f"failed to learn: at chance level ({100 / classes:.1f}%)"
        return ""

    def curve_axis(self) -> tuple[float, str]:
        return 100.0, "accuracy (%)"

    def result_picture(self, evaluation: Evaluation, classes: list[str], title: str) -> bytes:
        """The confusion matrix."""
        from tocha.figures.plots import plot_confusion

        return plot_confusion(evaluation.confusion.tolist(), classes, title)

    def picture_caption(self, evaluation: Evaluation) -> str:
        return f"accuracy {self.format('accuracy', evaluation.accuracy)}"

    def report(
        self,
        evaluation: Evaluation,
        classes: list[str],
        out_dir: Path,
        title: str,
        *,
        images: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """The confusion matrix (PNG), per-class figures, and for images the confidently wrong ones."""
        from tocha.tasks.metrics import per_class_report

        report = super().report(evaluation, classes, out_dir, title)
        report.update(
            {
                "macro_f1": evaluation.macro_f1,  # every figure `tocha evaluate` prints is kept here
                "confusion_matrix": evaluation.confusion.tolist(),
                "per_class": [vars(r) for r in per_class_report(evaluation.confusion, classes)],
            }
        )
        if images is not None:  # the images the model got wrong with the most confidence: look there first
            from tocha.figures.gallery import plot_confidently_wrong

            wrong = plot_confidently_wrong(
                images.cpu(),
                evaluation.outputs.cpu(),
                evaluation.labels.cpu(),
                classes,
                path=out_dir / "confidently_wrong.png",
            )
            report["confidently_wrong"] = [
                {"index": i, "predicted": p, "probability": prob} for i, p, prob in wrong
            ]
        return report

    def report_text(self, evaluation: Evaluation, classes: list[str]) -> str:
        from tocha.tasks.metrics import format_report

        return format_report(evaluation, classes)

    # -- a trained model's answers
    def output_words(self) -> str:
        return "logits (N, classes), float32; softmax gives probabilities"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        """Each input's `top_k` classes (class, index, probability), most probable first."""
        top_k = check_top_k(top_k)
        return [ranked(row, classes, top_k) for row in softmax(outputs)]

    def answer_key(self, classes: list[str]) -> str:
        return "top"

    def answer_text(self, answer: Any) -> str:
        return ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in answer)

    def answer_columns(self, classes: list[str]) -> list[str]:
        return ["predicted", "probability"]

    def answer_cells(self, answer: Any) -> list[str]:
        return [answer[0]["class"], f"{answer[0]['probability']:.4f}"]

    def agreement(
        self, outputs: np.ndarray, reference: np.ndarray, atol: float, rtol: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top-1 class, and ties: inputs whose two best logits tocha's own outputs cannot tell
        apart within the parity tolerance (|a - b| <= atol + rtol * |b|)."""
        agree = outputs.argmax(1) == reference.argmax(1)
        best_two = (
            np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((len(reference), 2))
        )
        tie = best_two[:, 1] - best_two[:, 0] <= atol + rtol * np.abs(best_two[:, 1])
        return agree, tie

    def export_score(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        return float((outputs.argmax(1) == labels).mean()) if len(labels) else 0.0
