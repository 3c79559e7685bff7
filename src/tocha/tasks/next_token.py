"""Next-token prediction (`--task next-token`): a corpus cut into windows of `context` tokens, each
position's answer the token that follows it. The model gives (N, T, V) logits, one row of the
vocabulary's V per position; the loss is the cross-entropy over every position, the metrics the
per-token accuracy and the perplexity, exp(loss): how many tokens the model hesitates between, on
average (1 is certain; the vocabulary's size is a uniform guess). A run's classes are its vocabulary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tocha.errors import TochaError
from tocha.tasks.base import Evaluation, Task, register_task

if TYPE_CHECKING:
    import torch


def token_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy of every position's logits (N, T, V) against its next token (N, T)."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs.flatten(0, 1), labels.flatten())


@register_task
class NextTokenTask(Task):
    name = "next-token"
    losses = ("cross_entropy",)
    metrics = ("loss", "accuracy", "perplexity")
    primary = "accuracy"  # of the next token; higher is better
    lower_is_better = ("loss", "perplexity")
    bounds = (0.0, 1.0)
    output_name = "logit"
    decision_name = "next token"
    per_position = True  # the model answers at every position: (N, T, V)

    def make_loss(self, name: str, label_smoothing: float) -> Any:
        return token_loss

    @classmethod
    def check_labels(cls, labels: torch.Tensor, classes: list[str], where: str) -> None:
        if labels.ndim != 2 or labels.is_floating_point():
            raise TochaError(f"{where}: next-token labels are token ids (N, T), not {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(classes)):
            raise TochaError(f"{where}: token ids outside 0..{len(classes) - 1}")

    def output_size(self, classes: list[str]) -> int:
        return len(classes)

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        import torch

        return {
            "loss_sum": torch.zeros((), device=device),
            "correct": torch.zeros((), dtype=torch.long, device=device),
            "tokens": torch.zeros((), dtype=torch.long, device=device),
        }

    def add(
        self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor
    ) -> None:
        sums["loss_sum"].add_(loss.detach(), alpha=len(labels))  # every window has as many tokens
        sums["correct"].add_((outputs.argmax(dim=2) == labels).sum())
        sums["tokens"].add_(labels.numel())

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        loss = sums["loss_sum"].item() / samples
        return {
            "loss": loss,
            "accuracy": sums["correct"].item() / max(1, sums["tokens"].item()),
            "perplexity": math.exp(min(loss, 700.0)),
        }

    def evaluate(self, outputs: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        labels = labels.to(outputs.device)
        loss = float(token_loss(outputs.float(), labels)) if len(labels) else float("nan")
        accuracy = float((outputs.argmax(dim=2) == labels).float().mean()) if len(labels) else float("nan")
        values = {"loss": loss, "accuracy": accuracy, "perplexity": math.exp(min(loss, 700.0))}
        return Evaluation(values, len(labels), outputs, labels)

    def format(self, metric: str, value: float) -> str:
        return (
            f"{100 * value:.2f}%"
            if metric == "accuracy"
            else f"{value:.4f}"
            if metric == "loss"
            else f"{value:.2f}"
        )

    def epoch_scores(self, row: dict[str, float], split: str) -> str:
        return f"acc {self.format('accuracy', row[f'{split}_accuracy'])} ppl {row[f'{split}_perplexity']:.2f}"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        return f"{split} next-token acc % (mean ± std)", 100.0, 2

    def curve_axis(self) -> tuple[float, str]:
        return 100.0, "next-token accuracy (%)"

    def output_words(self) -> str:
        return "logits (N, T, vocabulary), float32: each position's next token"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        raise TochaError(
            "a next-token run writes text: tocha generate RUN PROMPT (or model.generate in Python)"
        )

    def agreement(
        self, outputs: np.ndarray, reference: np.ndarray, atol: float, rtol: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each window's next tokens all the same; ties where the two best logits of a position
        cannot be told apart within the tolerance."""
        agree = (outputs.argmax(2) == reference.argmax(2)).all(1)
        best_two = np.sort(reference, axis=2)[:, :, -2:]
        tie = (best_two[:, :, 1] - best_two[:, :, 0] <= atol + rtol * np.abs(best_two[:, :, 1])).any(1)
        return agree, tie

    def export_score(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        return float((outputs.argmax(2) == labels).mean()) if len(labels) else 0.0
