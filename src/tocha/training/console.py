"""What `tocha train` prints: the data it chose, the setup, a progress bar, a line per epoch."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.data.registry import DATASETS
from tocha.errors import DivergedError, Interrupted
from tocha.models.user_names import is_own, model_label

if TYPE_CHECKING:
    import torch

    from tocha.config import ModelConfig, RunConfig
    from tocha.runs import RunFolder
    from tocha.tasks import Task
    from tocha.training.device_data import DeviceData


def auto_data_line(name: str) -> str:
    """What `--data auto` resolved to, and how to get the full set when it fell back to a sample."""
    spec = DATASETS[name]
    if spec.sample_of:
        return (
            f"full {spec.sample_of} not found on this machine: training on the bundled sample "
            f"{name} ({spec.sizes[0]} train / {spec.sizes[1]} test images). "
            f"For the full set: tocha train --data {spec.sample_of}"
        )
    return f"found full {name} on this machine: training on it"


def setup_line(
    cfg: RunConfig, parameters: int, data: DeviceData, device: torch.device, *, run_dir: Path
) -> str:
    """The run's first line: the model, the data, the device and how it computes, the folder."""
    t, loaded = cfg.train, data.loaded
    val = f"{len(data.val_set)} val ({loaded.val_source}) / " if data.val_set is not None else ""
    sizes = f"{len(data.train_set)} train / {val}{len(data.test_set)} test"
    return (
        f"{model_words(cfg.model)} ({parameters:,} parameters) on {loaded.name} "
        f"[{sizes}, {loaded.source}] · device {device} ({t.precision}"
        f"{f', {t.threads} thread' + 's' * (t.threads != 1) if device.type == 'cpu' else ''}"
        f"{', channels_last' if t.channels_last else ''}{', compiled' if t.compile else ''}) · run {run_dir}"
    )


def model_words(model: ModelConfig) -> str:
    """The model as the setup line names it: a family's name, or a user's class with its file."""
    if not is_own(model.name):
        return model.name
    where = f" from {Path(model.file).name}" if model.file else " from Python"
    return f"{model_label(model.name)}{where}"


def resuming_line(epoch: int, epochs: int, steps_done: int) -> str:
    where = f"after step {steps_done}" if steps_done else "from its start"
    return f"resuming at epoch {epoch}/{epochs} {where}"


def epoch_line(row: dict[str, float], epochs: int, task: Task, best: bool = False) -> str:
    """One epoch: its losses and the task's scores (accuracy, or a regression's RMSE and R²) on the
    training split, the validation split (`*`: the best so far) and, where it is scored every
    epoch, the test split (marked: never used for a choice)."""
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}"]
    for split, words in (("train", "train"), ("val", "val"), ("test", "test")):
        if f"{split}_loss" in row:
            mark = "*" if split == "val" and best else ""
            aside = " (not used for any choice)" if split == "test" and "val_loss" in row else ""
            parts.append(
                f"{words} loss {row[f'{split}_loss']:.4f} {task.epoch_scores(row, split)}{mark}{aside}"
            )
    parts.append(f"{row['seconds']:.1f}s  {row['samples_per_second']:,.0f} samples/s")
    return "  ".join(parts)


def shows_epoch(epoch: int, epochs: int, every: int) -> bool:
    """Whether epoch `epoch` gets its line (`--log-every`): every `every`-th, and always the last."""
    return epoch % every == 0 or epoch == epochs


def progress_bar(total: int, desc: str, enabled: bool, done: int = 0) -> Any:
    """A tqdm bar (a widget in a notebook, text on a terminal); None when not enabled (one plain line
    is printed per epoch anyway)."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr, dynamic_ncols=True)
    if done:
        bar.update(min(total, done))
    return bar


def diverged(epoch: int, step: int, lr: float, folder: RunFolder) -> DivergedError:
    """The error for a NaN/inf loss; raised before anything of that epoch is written. On the very
    first step no update has happened yet: the rate cannot be the cause, so it is not blamed."""
    kept = (
        f"{folder.file(folder.CHECKPOINT)} keeps the last state saved before it."
        if folder.has_checkpoint()
        else "No checkpoint was written."
    )
    if epoch == 1 and step == 1:
        return DivergedError(
            "training diverged at once: the loss is NaN or infinite at epoch 1, step 1, on the first "
            "batch, before any update (no learning rate can be the cause): the untrained model's "
            f"output or loss is not finite; check its forward (a division by zero, a log of 0) and the "
            f"inputs. {kept}",
            epoch,
            step,
        )
    return DivergedError(
        f"training diverged: the loss became NaN or infinite at epoch {epoch}, step {step}; "
        f"try a smaller learning rate (train.lr is {lr}). {kept}",
        epoch,
        step,
    )


def continue_command(folder: RunFolder, world_size: int) -> str:
    """The command that resumes a stopped run: on as many processes as it trained on."""
    return f"tocha train --resume {folder.path}" + (f" --nproc {world_size}" if world_size > 1 else "")


def stopped_there(stop: Any, epoch: int, step: int, folder: RunFolder, *, world_size: int) -> Interrupted:
    """What a run stopped by a signal between two steps says: where, what it saved, the way on."""
    return Interrupted(
        f"stopped by {stop.name} at epoch {epoch}, step {step}; saved {folder.file(folder.CHECKPOINT)}",
        stop.signum or signal.SIGTERM,
        f"Continue with: {continue_command(folder, world_size)}",
    )
