"""`--log tensorboard`: a run's numbers as TensorBoard event files in its folder's `tb/`, written
with PyTorch's own `torch.utils.tensorboard.SummaryWriter` (`pip install "tocha[tensorboard]"`).

- every `STEP_EVERY` steps, the step's loss and learning rate (`step/loss`, `step/lr`): the loss
  tensors are kept as they are and read from the device together when the epoch ends, so the
  loop never waits for the device to log one;
- every epoch, each metric of each split as `METRIC/SPLIT` (`loss/train` beside `loss/val`, one
  chart) and the epoch's time, at the step the epoch ends on;
- at the end, the run's figures (`curves.png`, the confusion matrix...) as images, and its
  hyperparameters with the validation and test scores (TensorBoard's HParams view).
Every point is at the global step (epochs done x steps per epoch + step). A resumed run opens the
writer with `purge_step` at the step its checkpoint holds, so whatever an interrupted process wrote
after that is dropped and nothing is counted twice. Only the process that writes the run folder
writes events (rank 0).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.config import RunConfig, to_dict
from tocha.errors import TochaError

STEP_EVERY = 10  # a step's loss and learning rate every this many steps
FOLDER = "tb"
SPLITS = ("train", "val", "test")


def check_tensorboard() -> None:
    """The tensorboard package is there (checked before a run folder is made)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        needs = '--log tensorboard needs the tensorboard package: pip install "tocha[tensorboard]"'
        raise TochaError(needs) from None


class TensorBoardLog:
    """One run's event files; `step`, `epoch` and `finish` as the run goes."""

    def __init__(self, run_dir: Path, steps_per_epoch: int, position: int) -> None:
        """`position`: the global step the run starts from (a resumed run's checkpoint's)."""
        check_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.steps_per_epoch = steps_per_epoch
        self.writer = SummaryWriter(str(run_dir / FOLDER), purge_step=position + 1 if position else None)
        self.pending: list[tuple[int, torch.Tensor, float]] = []

    def global_step(self, epoch: int, step: int) -> int:
        return (epoch - 1) * self.steps_per_epoch + step

    def step(self, epoch: int, step: int, loss: torch.Tensor | None, lr: float) -> None:
        """Keep every `STEP_EVERY`-th step's loss (a tensor, not read now) and learning rate."""
        if loss is not None and step % STEP_EVERY == 0:
            self.pending.append((self.global_step(epoch, step), loss.detach(), lr))

    def step_logger(self, epoch: int, tally: Any, optimizer: torch.optim.Optimizer) -> Any:
        """What each step of `epoch` calls: its loss (from `tally`) and learning rate kept."""
        return lambda: self.step(epoch, tally.steps_done, tally.last_loss, optimizer.param_groups[0]["lr"])

    def write_steps(self) -> None:
        """The kept steps' losses, read from the device at once, and their learning rates."""
        if not self.pending:
            return
        losses = torch.stack([loss.float().reshape(()) for _, loss, _ in self.pending]).tolist()
        for (at, _, lr), loss in zip(self.pending, losses, strict=True):
            self.writer.add_scalar("step/loss", loss, at)
            self.writer.add_scalar("step/lr", lr, at)
        self.pending = []

    def epoch(self, row: dict[str, float]) -> None:
        """An epoch's row of metrics.csv, each metric beside the same metric of the other splits."""
        self.write_steps()
        at = self.global_step(int(row["epoch"]) + 1, 0)
        for key, value in row.items():
            split, _, metric = key.partition("_")
            if key == "epoch":
                continue
            tag = f"{metric}/{split}" if split in SPLITS else f"time/{key}"
            self.writer.add_scalar(tag, value, at)
        self.writer.flush()

    def stop(self) -> None:
        """A run stopped part-way: what it has, on disk."""
        self.write_steps()
        self.writer.close()

    def finish(self, config: RunConfig, scores: dict[str, float], figures: dict[str, bytes], at: int) -> None:
        """The figures as images, and the hyperparameters with the final scores (HParams)."""
        from PIL import Image

        self.write_steps()
        for name, png in figures.items():
            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            self.writer.add_image(f"figures/{Path(name).stem}", image, at, dataformats="HWC")
        metrics = {f"hparam/{key}": value for key, value in scores.items()}
        self.writer.add_hparams(hyperparameters(config), metrics, run_name=".", global_step=at)
        self.writer.close()


def hyperparameters(config: RunConfig) -> dict[str, Any]:
    """The config's values HParams can show: numbers, text and booleans by their dotted names
    (lists as text, unset values as "none"), the data's and training's sections."""
    values: dict[str, Any] = {}
    for section in ("data", "model", "train"):
        for key, value in to_dict(config)[section].items():
            if section == "model" and key == "args":  # the model's own options, each by its key
                for name, option in (value or {}).items():
                    values[f"model.{name}"] = shown(option)
            else:
                values[f"{section}.{key}"] = shown(value)
    return values


def shown(value: Any) -> Any:
    """A config value as HParams takes it: lists as text, unset as "none", any other structure as text."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return value if isinstance(value, int | float | str | bool) else str(value)
