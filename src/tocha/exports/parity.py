"""Parity: an exported file, run in its own runtime, against tocha's model on a whole test split.

Tolerances are those of Lightning's ONNX export tests (`torch.testing`-style: |a - b| <= atol +
rtol * |b| with rtol 1e-3, atol 1e-5), and every top-1 answer must agree, except on exact ties
(images whose two best logits are within that tolerance of each other in tocha's own outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RTOL, ATOL = 1e-3, 1e-5


@dataclass
class Parity:
    samples: int
    max_abs_diff: float  # the largest logit difference over every image and class
    within_tolerance: bool  # every logit within atol + rtol * |tocha's logit|
    top1_agreement: float  # share of images whose top-1 class is the same
    disagreements_outside_ties: int
    ties: int  # images whose two best logits tocha cannot tell apart within the tolerance
    accuracy: float | None  # the exported file's test accuracy (None for regression)
    reference_accuracy: float | None  # tocha's (float32) test accuracy on the same images
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def ok(self) -> bool:
        return self.within_tolerance and self.disagreements_outside_ties == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def line(self) -> str:
        if self.accuracy is None:  # regression: one output, nothing to rank
            return (f"parity on {self.samples} test rows: max |output difference| {self.max_abs_diff:.2e} "
                    f"(tolerance {self.atol:g} + {self.rtol:g}·|output|)")  # fmt: skip
        return (
            f"parity on {self.samples} test images: max |logit difference| {self.max_abs_diff:.2e} "
            f"(tolerance {self.atol:g} + {self.rtol:g}·|logit|), top-1 agreement "
            f"{100 * self.top1_agreement:.2f}% ({self.ties} tied), accuracy "
            f"{100 * self.accuracy:.2f}% (tocha {100 * self.reference_accuracy:.2f}%)"
        )


def check_parity(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray,
                 reference: np.ndarray, batch_size: int = 1000,
                 regression: bool = False) -> Parity:  # fmt: skip
    """Run the exported model on `images` in batches and compare with `reference` outputs (logits;
    for a regression, predictions: then only the tolerance counts)."""
    outputs = np.concatenate([run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    diff = np.abs(outputs.astype(np.float64) - reference)
    within = bool((diff <= ATOL + RTOL * np.abs(reference)).all())
    agree = outputs.argmax(1) == reference.argmax(1)
    best_two = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((len(reference), 2))
    tie = best_two[:, 1] - best_two[:, 0] <= ATOL + RTOL * np.abs(best_two[:, 1])
    if regression:
        agree, tie = np.ones(len(outputs), dtype=bool), np.zeros(len(outputs), dtype=bool)
    return Parity(
        samples=len(images),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        within_tolerance=within,
        top1_agreement=float(agree.mean()) if len(agree) else 1.0,
        disagreements_outside_ties=int((~agree & ~tie).sum()),
        ties=int(tie.sum()),
        accuracy=None if regression else float((outputs.argmax(1) == labels).mean()),
        reference_accuracy=None if regression else float((reference.argmax(1) == labels).mean()),
    )
