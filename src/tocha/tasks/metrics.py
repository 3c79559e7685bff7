"""Classification metrics from model outputs and labels: loss, accuracy, confusion matrix,
per-class report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tocha.tasks.base import Evaluation

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(true class, predicted class) counts, shape (num_classes, num_classes)."""
    flat = labels.long() * num_classes + predicted.long()
    return torch.bincount(flat.cpu(), minlength=num_classes * num_classes).view(num_classes, num_classes)


@dataclass
class ClassReport:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


def per_class_report(cm: torch.Tensor, classes: list[str]) -> list[ClassReport]:
    """Precision, recall and F1 of each class from a confusion matrix (0 where undefined), in NumPy:
    no float64 tensor is made (Apple's MPS has none)."""
    counts = cm.cpu().numpy().astype(np.float64)
    tp = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return [ClassReport(name, float(precision[i]), float(recall[i]), float(f1[i]), int(actual[i]))
            for i, name in enumerate(classes)]  # fmt: skip


@dataclass
class ClassificationEvaluation(Evaluation):
    """Loss and accuracy (in `values`), and the confusion matrix they come from."""

    confusion: torch.Tensor | None = None  # (classes, classes) int64

    @property
    def macro_f1(self) -> float:
        """The unweighted mean of the per-class F1 scores."""
        return macro_f1_of(self.confusion)


def macro_f1_of(confusion: torch.Tensor) -> float:
    """The unweighted mean of the per-class F1 scores of a confusion matrix."""
    rows = per_class_report(confusion, [str(i) for i in range(len(confusion))])
    return sum(r.f1 for r in rows) / len(rows)


def evaluate_outputs(
    outputs: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn
) -> ClassificationEvaluation:
    """Loss (mean over samples), accuracy (correct / total) and confusion matrix."""
    num_classes = outputs.shape[1]
    predicted = outputs.argmax(dim=1)
    loss = loss_fn(outputs.float(), labels).item()
    accuracy = (predicted == labels).sum().item() / len(labels)  # an exact count, then a Python division
    confusion = confusion_matrix(predicted, labels, num_classes)
    f1 = macro_f1_of(confusion)
    values = {"loss": loss, "accuracy": accuracy, "f1": f1}
    return ClassificationEvaluation(values, len(labels), outputs, labels,
                                    confusion=confusion)  # fmt: skip


def format_report(evaluation: ClassificationEvaluation, classes: list[str]) -> str:
    """A printable table: per-class precision / recall / F1 / support and the confusion matrix."""
    width = max(12, *(len(c) for c in classes))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    rows = per_class_report(evaluation.confusion, classes)
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.precision:9.4f}  {r.recall:6.4f}  {r.f1:5.4f}  {r.support:7d}")
    lines.append(
        f"{'macro avg F1':<{width}}  {'':9}  {'':6}  {evaluation.macro_f1:5.4f}  {evaluation.samples:7d}"
    )
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    cm = evaluation.confusion.tolist()
    cell = max(5, len(str(max(max(r) for r in cm))) + 1)
    name_width = max(len(c) for c in classes)
    lines.append(" " * (name_width + 3) + "".join(f"{i:>{cell}}" for i in range(len(classes))))
    for i, row in enumerate(cm):
        lines.append(f"{i:>2} {classes[i]:<{name_width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
