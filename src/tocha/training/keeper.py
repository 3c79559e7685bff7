"""`Keeper`: the choices a run makes on its validation split, and the weights it keeps.

After each epoch the monitored validation metric (`val_accuracy` unless `--monitor` names another)
says whether this epoch is the best so far (better by more than `--min-delta`; of two epochs that
score alike, the one with the lower validation loss); with `--keep best` its weights are copied
aside. `--early-stop P` ends the run when P epochs have passed since the last improvement. The
test split is never looked at here: it is scored once, on the kept weights, after the last epoch.
Everything but the kept weights follows from the history, so a resumed run replays it and goes on
exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

NONE = "none"  # the monitor of a run without a validation split: nothing is chosen


@dataclass
class Keeper:
    monitor: str  # val_accuracy, val_loss...; NONE without a validation split
    higher: bool  # whether the monitored metric improves as it rises
    keep_best: bool  # keep the best epoch's weights (else the last's)
    min_delta: float = 0.0
    patience: int | None = None  # --early-stop
    epoch: int = 0  # the best epoch so far (0: none yet): the kept weights'
    value: float = math.nan  # its monitored value
    loss: float = math.nan  # its validation loss: between epochs of equal value, the lower wins
    improved_at: int = 0  # the last epoch that improved the value (patience counts from it)
    weights: dict[str, torch.Tensor] | None = None  # its weights, on the CPU (keep best only)
    stopped_early: int | None = None  # the epoch the run stopped at for lack of improvement

    def observe(self, row: dict[str, float], weights: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """After an epoch (its metrics.csv row): whether it is the best so far; its weights copied
        aside when they are kept. Without a validation split every epoch is the latest, not a best."""
        epoch = int(row["epoch"])
        if self.monitor == NONE:
            self.epoch = epoch
            return False
        value, loss = row[self.monitor], row.get("val_loss", math.nan)
        improved = not self.epoch or self.improves(value)
        # An accuracy on a few hundred rows ties often: of two epochs that score alike, the one with
        # the lower validation loss is kept (it is the surer), though it does not reset the patience.
        tie = value == self.value and self.monitor != "val_loss" and loss < self.loss
        if not (improved or tie):
            return False
        self.epoch, self.value, self.loss = epoch, value, loss
        if improved:
            self.improved_at = epoch
        if self.keep_best:
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in weights().items()}
        return True

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(self.value):
            return True
        return value > self.value + self.min_delta if self.higher else value < self.value - self.min_delta

    def should_stop(self, epoch: int) -> bool:
        """Whether `--early-stop`'s patience has run out at `epoch` (and note it)."""
        if self.patience is not None and self.monitor != NONE and epoch - self.improved_at >= self.patience:
            self.stopped_early = epoch
        return self.stopped_early is not None

    def stop_line(self, task_format: Callable[[str, float], str]) -> str:
        """What the run says when it stops early."""
        best = task_format(self.monitor.removeprefix("val_"), self.value)
        return (f"early stop after epoch {self.stopped_early}: {self.monitor} has not improved for "
                f"{self.patience} epochs (best {best}, kept: epoch {self.epoch})")  # fmt: skip

    def kept_epoch(self, last: int) -> int:
        """The epoch whose weights the run keeps."""
        return self.epoch if self.keep_best and self.epoch else last

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the choices (`Checkpoint.selection`)."""
        return {"monitor": self.monitor, "epoch": self.epoch, "value": self.value,
                "improved_at": self.improved_at, "weights": self.weights,
                "stopped_early": self.stopped_early}  # fmt: skip

    def restore(self, state: dict[str, Any] | None, history: list[dict[str, float]]) -> None:
        """A resumed run's choices: replayed from its history (the best epoch and value), the kept
        weights and an early stop from its checkpoint."""
        for row in history:
            self.observe(row, lambda: {})
        if state is not None:
            self.weights = state.get("weights") if self.keep_best else None
            self.stopped_early = state.get("stopped_early")
