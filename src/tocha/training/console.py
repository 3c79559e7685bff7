"""What `tocha train` prints: the data it chose, the setup, a progress bar, a line per epoch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.data.registry import DATASETS

if TYPE_CHECKING:
    from tocha.training.setup import Setup


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


def setup_line(s: Setup, run_dir: Path) -> str:
    cfg, t = s.cfg, s.cfg.train
    return (
        f"{cfg.model.name} ({s.n_params:,} parameters) on {s.data.name} [{len(s.train_set)} train / "
        f"{len(s.test_set)} test, {s.data.source}] · device {s.device} ({t.precision}"
        f"{f', {t.threads} thread' + 's' * (t.threads != 1) if s.device.type == 'cpu' else ''}"
        f"{', channels_last' if t.channels_last else ''}{', compiled' if t.compile else ''}) · run {run_dir}"
    )


def resuming_line(epoch: int, epochs: int, steps_done: int) -> str:
    where = f"after step {steps_done}" if steps_done else "from its start"
    return f"resuming at epoch {epoch}/{epochs} {where}"


def epoch_line(row: dict[str, float], epochs: int) -> str:
    """One epoch: its losses and the task's metrics (accuracy, or a regression's RMSE and R²)."""
    if "train_accuracy" in row:
        scores = {split: f"acc {100 * row[f'{split}_accuracy']:.2f}%" for split in ("train", "test")}
    else:
        scores = {
            split: f"rmse {row[f'{split}_rmse']:.4g} r2 {row[f'{split}_r2']:.3f}"
            for split in ("train", "test")
        }
    return (
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  "
        f"train loss {row['train_loss']:.4f} {scores['train']}  "
        f"test loss {row['test_loss']:.4f} {scores['test']}  "
        f"{row['seconds']:.1f}s  {row['samples_per_second']:,.0f} samples/s"
    )


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
