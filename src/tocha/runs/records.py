"""The records of a run: the rows of metrics.csv and the content of summary.json, as types.

Their column and key names are made here from the task's metric names (`train_loss`,
`val_accuracy`, `final_test_accuracy`...), so the code that reads them back (compare, plots)
asks for fields instead of retyping strings. An epoch's row has the training split's metrics and
the validation split's (what choices are made on); the test split's only where it is scored every
epoch (`--test-every-epoch`, or a run without a validation split), never used for a choice.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from tocha.tasks import task_named

TIMING_COLUMNS = ("seconds", "samples_per_second", "eval_seconds")


def metric_columns(
    metrics: tuple[str, ...], splits: tuple[str, ...] = ("train", "val"), train_only: tuple[str, ...] = (),
    held_out: tuple[str, ...] = (),
) -> list[str]:  # fmt: skip
    """metrics.csv's header: epoch, <split>_<m> for each split (train, val, test where scored each
    epoch) and metric, and `held_out`'s for the splits scored whole (macro F1: not train's, which is
    summed step by step), `train_only`'s figures of the training steps (the gradient norms), then
    the timings."""
    scored = [
        f"{split}_{m}" for split in splits for m in (metrics if split == "train" else metrics + held_out)
    ]
    return ["epoch", *scored, *(f"train_{m}" for m in train_only), *TIMING_COLUMNS]


def epoch_row(
    epoch: int, scores: dict[str, dict[str, float]], seconds: float, samples: int, *, eval_seconds: float
) -> dict[str, float]:
    """One line of metrics.csv: `scores` maps a split (train, val, test) to its metrics."""
    return {
        "epoch": epoch,
        **{f"{split}_{m}": v for split, metrics in scores.items() for m, v in metrics.items()},
        "seconds": seconds,
        "samples_per_second": samples / seconds,
        "eval_seconds": eval_seconds,
    }


def metrics_csv(history: list[dict[str, float]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def parse_metrics_csv(text: str) -> list[dict[str, float]]:
    """The rows of metrics.csv; a row cut short or a cell that is not a number is a ValueError."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if None in row.values() or None in row:  # fewer or more cells than the header
            raise ValueError(f"row {len(rows) + 1} does not have the header's columns")
        rows.append({k: float(v) for k, v in row.items()})
    return rows


@dataclass
class RunSummary:
    """summary.json of a finished run."""

    dataset: str
    data_source: str
    model: str
    parameters: int
    epochs: int
    final_test: dict[
        str, float
    ]  # every metric of the task on the test split, scored once, on the kept weights
    val: dict[str, float]  # every metric on the validation split at the kept epoch ({} without one)
    train_seconds: float
    wall_seconds: float
    device: str
    versions: dict[str, str] = field(default_factory=dict)  # tocha, torch, python
    threads: int = 0
    classes: int = 0  # classification: how many (chance level is 1 / classes); 0 for regression
    task: str = ""  # the task's name (`tocha.tasks`); "" in summaries written before it was recorded
    selection: str = "none"  # the validation metric the kept weights were chosen on; none: no validation
    kept_epoch: int = 0  # the epoch whose weights the run keeps (and the test score is of)
    stopped_early: int | None = None  # the epoch `--early-stop` ended the run at, if it did
    initial_weights: str = "seeded"  # "given": a module object's own, not drawn from the run's seed

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "data_source": self.data_source,
            "model": self.model,
            "parameters": self.parameters,
            "epochs": self.epochs,
            "selection": self.selection,
            "kept_epoch": self.kept_epoch,
            "stopped_early": self.stopped_early,
            **{f"final_test_{m}": v for m, v in sorted(self.final_test.items())},
            **{f"val_{m}": v for m, v in sorted(self.val.items())},
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "device": self.device,
            **self.versions,
            "threads": self.threads,
            "classes": self.classes,
            "task": self.task,
            "initial_weights": self.initial_weights,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """The summary, checked: every number finite, the task's primary score within its range (a
        NaN or a 1e308 accuracy is a damaged record, never a result: ValueError)."""

        def prefixed(prefix: str) -> dict[str, float]:
            return {k[len(prefix) :]: float(v) for k, v in d.items() if k.startswith(prefix)}

        summary = cls(
            dataset=d["dataset"],
            data_source=d.get("data_source", ""),
            model=d["model"],
            parameters=int(d["parameters"]),
            epochs=int(d["epochs"]),
            final_test=prefixed("final_test_"),
            val=prefixed("val_"),
            train_seconds=float(d["train_seconds"]),
            wall_seconds=float(d.get("wall_seconds", 0.0)),
            device=d.get("device", ""),
            versions={k: d[k] for k in ("tocha", "torch", "python") if k in d},
            threads=int(d.get("threads", 0)),
            classes=int(d.get("classes", 0)),
            task=str(d.get("task", "")),
            selection=str(d.get("selection", "none")),  # summaries before validation: chosen on nothing
            kept_epoch=int(d.get("kept_epoch", d["epochs"])),
            stopped_early=int(d["stopped_early"]) if d.get("stopped_early") is not None else None,
            initial_weights=str(d.get("initial_weights", "seeded")),
        )
        if not all(math.isfinite(v) and v >= 0 for v in (summary.train_seconds, summary.wall_seconds)):
            raise ValueError("its seconds are not finite")
        task = task_named(summary.task, summary.final_test)
        low, high = task.bounds
        score = summary.final_test.get(task.primary, math.nan)
        if not (math.isfinite(score) and low <= score <= high):
            raise ValueError(f"its {task.primary} {score!r} is not a possible one")
        val = summary.val.get(task.primary)
        if val is not None and not (math.isfinite(val) and low <= val <= high):
            raise ValueError(f"its validation {task.primary} {val!r} is not a possible one")
        return summary
