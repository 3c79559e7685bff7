"""Classification: integer labels, one output per class; loss and accuracy (correct / total).

The task owns what the training loop and evaluation must not assume: the loss, the sums kept on
the device during an epoch, and the metrics computed from a model's outputs and the labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from tocha.errors import TochaError
from tocha.tasks.metrics import Evaluation, evaluate_outputs

LOSSES = ("cross_entropy", "nll", "mse")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(name: str, label_smoothing: float = 0.0) -> LossFn:
    """`cross_entropy` on logits; `nll` on log-probabilities (pair it with the log_softmax head);
    `mse` between softmax probabilities and one-hot labels."""
    if name not in LOSSES:
        raise TochaError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    if label_smoothing and name != "cross_entropy":
        raise TochaError(f"label_smoothing works with the cross_entropy loss, not {name}")
    if name == "cross_entropy":
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)
    if name == "nll":
        return F.nll_loss
    return lambda out, y: F.mse_loss(out.softmax(dim=1), F.one_hot(y, out.shape[1]).to(out.dtype))


class ClassificationTask:
    """What classification means to the loop, to evaluation and to the run's records."""

    metrics = ("loss", "accuracy")  # metrics.csv has train_<m> and test_<m> for each
    primary = "accuracy"  # what compare ranks by; higher is better

    def __init__(self, loss: str = "cross_entropy", label_smoothing: float = 0.0) -> None:
        self.loss_name = loss
        self.loss = make_loss(loss, label_smoothing)  # (outputs (B, classes), labels (B,)) -> mean loss

    def prepare(self, labels: torch.Tensor) -> torch.Tensor:
        """Training labels as the loss takes them: as they are."""
        return labels

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        """An epoch's running sums, on the device: summed per-sample loss and correct answers."""
        return {
            "loss_sum": torch.zeros((), device=device),
            "correct": torch.zeros((), dtype=torch.long, device=device),
        }

    def add(
        self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """Add one batch to the sums without reading anything back (no wait for the device)."""
        sums["loss_sum"].add_(loss, alpha=len(labels))
        sums["correct"].add_((outputs.argmax(dim=1) == labels).sum())

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        """The epoch's metrics from its sums: the one read from the device per epoch."""
        loss_sum, correct = sums["loss_sum"].item(), sums["correct"].item()
        return {"loss": loss_sum / samples, "accuracy": correct / samples}

    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        """Loss, accuracy and confusion matrix of a whole split's outputs."""
        return evaluate_outputs(outputs, labels, self.loss)
