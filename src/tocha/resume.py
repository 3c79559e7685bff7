"""What `tocha train --resume RUN` needs: the training state in a checkpoint, and the checks.

A resumed run must be the run that would have happened, so the checkpoint keeps everything the
next step depends on: weights, optimizer and scheduler state, the weight average, the random
generators, and where in its epoch the run stopped (the epoch's order and partial sums).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tocha.checkpoint import CHECKPOINT_NAME, load_checkpoint
from tocha.config import RunConfig, config_from_dict, config_keys, get_value, load_config, set_value
from tocha.devices import resolve_device
from tocha.engine import EpochProgress
from tocha.errors import TochaError
from tocha.files import TMP_PREFIX

if TYPE_CHECKING:
    from tocha.train import Setup

TRAINING_STATE = "training_state"
# Options that say where to find things, not what to train: a resumed run may change them.
WHERE_NOT_WHAT = {"data.data_dir", "data.download"}
PROGRESS_FIELDS = ("order", "steps_done", "loss_sum", "correct", "first_bad_step", "seconds")


def capture_training_state(s: Setup, progress: EpochProgress | None) -> dict[str, Any]:
    """Everything beyond the (evaluated) weights and optimizer that the next step depends on."""
    return {
        # With a weight average the checkpoint's `model` is the average; the trained weights go here.
        "model": s.model.state_dict() if s.averaged is not None else None,
        "averaged": s.averaged.state_dict() if s.averaged is not None else None,
        "scheduler": s.scheduler.state_dict() if s.scheduler is not None else None,
        "generator": s.generator.get_state(),  # batch order and augmentation draws
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if s.device.type == "cuda" else None,
        "device_type": s.device.type,
        "train_size": len(s.train_set),
        "wall_seconds": s.wall_seconds,
        "epoch_progress": None
        if progress is None
        else {name: getattr(progress, name) for name in PROGRESS_FIELDS},
    }


def open_resumable(run: str | Path, overrides: dict[str, Any]) -> tuple[Path, dict[str, Any], RunConfig]:
    """The run folder, its checkpoint and the config to go on with; every reason not to, as an error."""
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise TochaError(f"{run}: no such run folder; nothing to resume")
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise TochaError(
            f"{run_dir}: no {CHECKPOINT_NAME}: the run stopped before its first checkpoint, so there is "
            f"nothing to resume; start it again with: tocha train --config {run_dir / 'config.yaml'}"
        )
    ckpt = load_checkpoint(path)
    if TRAINING_STATE not in ckpt:
        raise TochaError(f"{path}: written by an older tocha without the training state; cannot resume it")
    config = config_from_dict(ckpt["config"], str(path))
    check_matches_config_file(run_dir, config)
    for key, value in overrides.items():
        if key in WHERE_NOT_WHAT:
            set_value(config, key, value)
        elif key != "train.epochs" and get_value(config, key) != value:
            raise TochaError(
                f"--resume continues {run_dir} exactly as it was configured: {key} is "
                f"{get_value(config, key)!r} there, not {value!r} (start a new run to change it)"
            )
    done, stopped_mid_epoch = ckpt["epoch"], ckpt[TRAINING_STATE]["epoch_progress"] is not None
    epochs = overrides.get("train.epochs", config.train.epochs)
    if epochs != config.train.epochs:
        if config.train.schedule != "constant":
            raise TochaError(
                f"--epochs {epochs}: the {config.train.schedule} schedule of {run_dir} was planned for "
                f"{config.train.epochs} epochs and a resumed run keeps it; start a new run instead"
            )
        if epochs < done + stopped_mid_epoch:
            raise TochaError(f"--epochs {epochs}: {run_dir} has already trained {done} epochs")
        config.train.epochs = epochs
    if done >= config.train.epochs and not stopped_mid_epoch:
        more = " (to train it longer: --resume RUN --epochs N)" if config.train.schedule == "constant" else ""
        raise TochaError(f"{run_dir} already finished its {done} epochs; nothing to resume{more}")
    saved_type, here = ckpt[TRAINING_STATE]["device_type"], resolve_device(config.train.device)
    if here.type != saved_type:  # a CUDA generator's state cannot continue on the CPU, nor back
        raise TochaError(
            f"{run_dir} was training on {saved_type}; device {config.train.device} is {here.type} "
            f"here, and its random state cannot continue on another kind of device"
        )
    return run_dir, ckpt, config


def resumable(run_dir: Path) -> bool:
    """True for a run folder whose checkpoint can be resumed (stopped early, state saved)."""
    try:
        open_resumable(run_dir, {})
    except TochaError:
        return False
    return True


def check_matches_config_file(run_dir: Path, saved: RunConfig) -> None:
    """config.yaml and checkpoint.pt must describe the same run (a copied-in checkpoint does not)."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return
    on_disk = load_config(config_file)
    # --epochs may have extended the run; the data may have moved.
    for key in (k for k in config_keys() if k != "train.epochs" and k not in WHERE_NOT_WHAT):
        in_file, in_checkpoint = get_value(on_disk, key), get_value(saved, key)
        if in_file != in_checkpoint:
            raise TochaError(
                f"{run_dir}: config.yaml and {CHECKPOINT_NAME} disagree on {key} ({in_file!r} against "
                f"{in_checkpoint!r}): the checkpoint belongs to another run; nothing resumed"
            )


def restore_training_state(s: Setup, ckpt: dict[str, Any], run_dir: Path) -> EpochProgress | None:
    """Put the saved state into the freshly built setup `s`; returns where the epoch stopped."""
    state = ckpt[TRAINING_STATE]
    found = (ckpt["classes"], list(ckpt["image_shape"]), state["train_size"])
    here = (s.data.classes, list(s.data.image_shape), len(s.train_set))
    if found != here:
        raise TochaError(
            f"{run_dir} was trained on {s.cfg.data.name} with classes {found[0]}, images {found[1]} and "
            f"{found[2]} training images; the data found now has {here[0]}, {here[1]}, {here[2]}"
        )
    try:
        s.model.load_state_dict(state["model"] if state["model"] is not None else ckpt["model"])
        if s.averaged is not None:
            s.averaged.load_state_dict(state["averaged"])
        s.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise TochaError(f"{run_dir}: the saved weights do not fit {s.cfg.model.name} ({first_line})") from e
    if s.scheduler is not None:
        s.scheduler.load_state_dict(state["scheduler"])
    s.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    saved = state["epoch_progress"]
    if saved is None:
        return None
    on_device = {k: v.to(s.device) if isinstance(v, torch.Tensor) else v for k, v in saved.items()}
    return EpochProgress(**on_device)


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete unfinished atomic writes left by a killed process; returns what was removed."""
    stale = sorted(p for p in run_dir.glob(TMP_PREFIX + "*") if p.is_file())
    for path in stale:
        path.unlink()
    return stale
