"""What a trained model answers, by its task: `predict`'s answers (lines, CSV columns, JSON keys),
the layer every export ends with, and an export's parity and score. `Task` takes these from
`TaskAnswering`; `tasks.answers` prints and writes the answers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn


class TaskAnswering:
    """A trained model's answers and an export's checks, as a task defines them."""

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
