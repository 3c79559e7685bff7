"""Parity: an exported file, run in its own runtime, against tocha's model on a whole test split.

Tolerances are those of Lightning's ONNX export tests (`torch.testing`-style: |a - b| <= atol +
rtol * |b| with rtol 1e-3, atol 1e-5). Where the task makes a decision from the outputs (a
classifier's top-1 class) every decision must agree too, except on exact ties (inputs whose
deciding outputs tocha's own model cannot tell apart within that tolerance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tocha.tasks import Task, make_task

RTOL, ATOL = 1e-3, 1e-5


@dataclass
class Parity:
    samples: int
    inputs: str  # what the inputs are: "images", "rows"
    output: str  # what one output is called: "logit", "output"
    max_abs_diff: float  # the largest output difference over every input
    within_tolerance: bool  # every output within atol + rtol * |tocha's output|
    top1_agreement: float  # share of inputs whose decision (a classifier's top-1 class) is tocha's
    disagreements_outside_ties: int
    ties: int  # inputs whose decision tocha cannot make within the tolerance
    decision: str | None  # what is decided ("top-1"), None where the task decides nothing
    metric: str  # the task's primary metric, scored below
    # The exported file's test score in that metric (None where the task gives none), and tocha's
    # (float32) on the same inputs; named `accuracy` as parity.json has always called them.
    accuracy: float | None
    reference_accuracy: float | None
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return self.within_tolerance and self.disagreements_outside_ties == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def line(self, task: Task) -> str:
        """One line: the largest difference against the tolerance, the decisions, the scores."""
        o = self.output
        text = (f"parity on {self.samples} test {self.inputs}: max |{o} difference| {self.max_abs_diff:.2e} "
                f"(tolerance {self.atol:g} + {self.rtol:g}·|{o}|)")  # fmt: skip
        if self.decision is not None:
            text += f", {self.decision} agreement {100 * self.top1_agreement:.2f}% ({self.ties} tied)"
        if self.accuracy is not None and self.reference_accuracy is not None:
            shown = task.format(self.metric, self.accuracy), task.format(self.metric, self.reference_accuracy)
            text += f", {self.metric} {shown[0]} (tocha {shown[1]})"
        return text


def check_parity(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, labels: np.ndarray,
                 reference: np.ndarray, *, task: Task | None = None, words: str = "images",
                 batch_size: int = 1000) -> Parity:  # fmt: skip
    """Run the exported model on `inputs` in batches and compare with tocha's `reference` outputs;
    `task` reads them (a classifier's, unless given)."""
    task = task or make_task()
    outputs = np.concatenate([run(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)])
    diff = np.abs(outputs.astype(np.float64) - reference)
    within = bool((diff <= ATOL + RTOL * np.abs(reference)).all())
    decided = task.agreement(outputs, reference, ATOL, RTOL)
    agree, tie = (
        decided if decided is not None else (np.ones(len(outputs), bool), np.zeros(len(outputs), bool))
    )
    return Parity(
        samples=len(inputs),
        inputs=words,
        output=task.output_name,
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        within_tolerance=within,
        top1_agreement=float(agree.mean()) if len(agree) else 1.0,
        disagreements_outside_ties=int((~agree & ~tie).sum()),
        ties=int(tie.sum()),
        decision=task.decision_name if decided is not None else None,
        metric=task.primary,
        accuracy=task.export_score(outputs, labels),
        reference_accuracy=task.export_score(reference, labels),
    )
