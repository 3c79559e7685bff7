"""Multi-label classification: each input may carry several labels at once (a photo's tags).

The labels are multi-hot rows (N, K) of 0 and 1; the model gives one output per label (a logit),
the loss is binary cross-entropy on the logits, and a label is on where its probability is over 1/2.
Scored by micro-averaged F1 (every label decision of a split counted together: 2·TP / (2·TP + FP +
FN)), the share of inputs whose every label is right (exact match), and the share of label
decisions that are right. Data given in Python (`data.given`) makes it from targets of K integers
0/1 (or booleans) per item; a table's target column from sets written `a|b`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tocha.errors import TochaError
from tocha.tasks.base import Evaluation, Target, Task, register_task

if TYPE_CHECKING:
    import torch

SUMS = ("loss", "exact", "right", "tp", "fp", "fn")


@register_task
class MultiLabelTask(Task):
    name = "multilabel"
    losses = ("bce",)
    metrics = ("loss", "f1", "exact_match", "label_accuracy")
    primary = "f1"
    bounds = (0.0, 1.0)
    output_name = "logit"
    decision_name = "label set"

    def read_target(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str) -> Target:
        """A table's column of label sets, `a|b` (an empty cell: none of them)."""
        sets = [{label for label in cell.split("|") if label} for cell in cells]
        classes = sorted(set().union(*sets))
        if len(classes) < 2:
            raise TochaError(f"{where}: {column} holds fewer than two labels")
        values = np.array([[name in labels for name in classes] for labels in sets], dtype=np.float32)
        return Target(values, classes)

    def unusable_targets(self, cells: list[str], missing: np.ndarray) -> np.ndarray:
        return np.zeros(len(cells), dtype=bool)  # an empty cell is the empty set of labels

    def output_size(self, classes: list[str]) -> int:
        return len(classes)

    def prepare(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.float()  # the loss takes 0/1 as floats

    def make_loss(self, name: str, label_smoothing: float) -> Any:
        from torch.nn import functional as F

        return lambda outputs, labels: F.binary_cross_entropy_with_logits(outputs, labels.to(outputs.dtype))

    # -- training
    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        import torch

        return {"totals": torch.zeros(len(SUMS), dtype=torch.float64, device=device)}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            labels: torch.Tensor) -> None:  # fmt: skip
        import torch

        on, truth = outputs.detach() > 0, labels > 0.5  # (B, K)
        right = on == truth
        counts = (loss.detach() * len(labels), right.all(dim=1).sum(), right.float().mean(dim=1).sum(),
                  (on & truth).sum(), (on & ~truth).sum(), (~on & truth).sum())  # fmt: skip
        sums["totals"].add_(torch.stack([c.to(torch.float64) for c in counts]))

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        loss, exact, right, tp, fp, fn = sums["totals"].tolist()
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0  # nothing on, nothing missed: all right
        return {
            "loss": loss / samples,
            "f1": f1,
            "exact_match": exact / samples,
            "label_accuracy": right / samples,
        }

    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        sums = self.new_sums(outputs.device)
        self.add(sums, self.loss(outputs.float(), labels.float()), outputs, labels)
        return Evaluation(self.summarize(sums, len(labels)), len(labels), outputs, labels)

    # -- words
    def format(self, metric: str, value: float) -> str:
        return f"{value:.4f}" if metric == "loss" else f"{100 * value:.2f}%"

    def failed_to_learn(self, mean: float, classes: int) -> str:
        return "failed to learn: F1 0, no label found" if mean <= 0 else ""

    def curve_axis(self) -> tuple[float, str]:
        return 100.0, "F1 (%)"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        return f"{split} F1 % (mean ± std)", 100.0, 2

    # -- a trained model's answers (its outputs: each label's logit, as evaluation scores them)
    def output_words(self) -> str:
        return "each label's logit (N, K), float32: its probability is sigmoid(logit)"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        """The labels over 1/2 with their probabilities, most probable first (none: an empty list)."""
        found = []
        for row in 1 / (1 + np.exp(-outputs.astype(np.float64))):
            on = sorted(((float(p), k) for k, p in enumerate(row) if p > 0.5), reverse=True)
            found.append([{"class": classes[k], "index": k, "probability": p} for p, k in on])
        return found

    def answer_key(self, classes: list[str]) -> str:
        return "labels"

    def answer_text(self, answer: Any) -> str:
        return ", ".join(f"{a['class']} {100 * a['probability']:.1f}%" for a in answer) or "(no label)"

    def answer_cells(self, answer: Any) -> list[str]:
        return ["|".join(a["class"] for a in answer)]

    def agreement(self, outputs: np.ndarray, reference: np.ndarray, atol: float,
                  rtol: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        agree = ((outputs > 0) == (reference > 0)).all(axis=1)
        tie = (np.abs(reference) <= atol + rtol * np.abs(reference)).any(axis=1)
        return agree, tie

    def export_score(self, outputs: np.ndarray, labels: np.ndarray) -> float | None:
        on, truth = outputs > 0, labels > 0.5
        tp, fp, fn = (on & truth).sum(), (on & ~truth).sum(), (~on & truth).sum()
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0
