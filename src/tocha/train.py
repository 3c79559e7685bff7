"""`tocha train`: resolve the config, load data once onto the device, run the epochs, record it all.

The per-epoch loop itself lives in `engine.train_one_epoch`; this module is the bookkeeping
around it: run directory, metrics.csv, checkpoints, plots and summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tocha import __version__
from tocha.augment import Augment
from tocha.checkpoint import CHECKPOINT_NAME, default_run_name, new_run_dir, save_checkpoint
from tocha.config import RunConfig, copy_config, to_dict, to_yaml, validate
from tocha.data.load import AUTO, load_configured, resolve_name
from tocha.data.registry import DATASETS
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.devices import resolve_channels_last, resolve_device, resolve_precision
from tocha.engine import EpochProgress, EpochResult, predict_logits, train_one_epoch
from tocha.errors import DivergedError, Interrupted, TochaError
from tocha.files import atomic_write_text
from tocha.interrupt import StopRequest
from tocha.losses import LossFn, make_loss
from tocha.metrics import Evaluation, evaluate_outputs
from tocha.models import model_from_config
from tocha.models.registry import get_factory
from tocha.optimizers import OPTIMIZERS, make_optimizer, unknown_optimizer
from tocha.plots import plot_confusion, plot_curves
from tocha.preprocess import Normalize, channel_stats
from tocha.resume import (
    capture_training_state,
    open_resumable,
    remove_stale_temp_files,
    restore_training_state,
)
from tocha.schedules import SCHEDULES, make_scheduler, unknown_schedule

METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "seconds",
    "samples_per_second",
    "eval_seconds",
]


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, float]]
    final: Evaluation
    data: LoadedData
    config: RunConfig


def prepare_data(cfg: RunConfig, log: Callable[[str], None]) -> LoadedData:
    """Resolve `auto`, load the dataset and fill in the normalisation statistics (in `cfg`)."""
    requested = cfg.data.name
    cfg.data.name = resolve_name(requested, cfg.data.data_dir)
    if requested == AUTO:
        spec = DATASETS[cfg.data.name]
        if spec.sample_of:
            log(
                f"full {spec.sample_of} not found on this machine: training on the bundled sample "
                f"{cfg.data.name} ({spec.sizes[0]} train / {spec.sizes[1]} test images). "
                f"For the full set: tocha train --data {spec.sample_of}"
            )
        else:
            log(f"found full {cfg.data.name} on this machine: training on it")
    data = load_configured(cfg.data, log=log)
    if data.details.get("image_size"):  # image folders: record the size chosen, for predict
        cfg.data.image_size = list(data.details["image_size"])
    if (cfg.data.mean is None) != (cfg.data.std is None):
        raise TochaError("give both data.mean and data.std, or neither")
    if cfg.data.mean is None:
        cfg.data.mean, cfg.data.std = channel_stats(data.train.images)
    channels = data.image_shape[0]
    if len(cfg.data.mean) != channels or len(cfg.data.std) != channels or min(cfg.data.std) <= 0:
        raise TochaError(f"data.mean and data.std need {channels} value(s) each, std > 0")
    return data


def resolve_model_config(cfg: RunConfig) -> None:
    """NLLLoss expects log-probabilities: the log_softmax head follows the loss unless set."""
    if cfg.model.log_softmax is None:
        cfg.model.log_softmax = cfg.train.loss == "nll"
    if cfg.train.loss == "nll" and not cfg.model.log_softmax:
        raise TochaError("loss nll needs the log_softmax head (model.log_softmax: true)")
    if cfg.train.loss != "nll" and cfg.model.log_softmax:
        raise TochaError(f"the log_softmax head pairs with loss nll, not {cfg.train.loss}")


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar on a terminal; None otherwise (one plain line per epoch is printed anyway)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr, dynamic_ncols=True)


def epoch_line(row: dict[str, float], epochs: int) -> str:
    return (
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  "
        f"train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}%  "
        f"test loss {row['test_loss']:.4f} acc {100 * row['test_accuracy']:.2f}%  "
        f"{row['seconds']:.1f}s  {row['samples_per_second']:,.0f} samples/s"
    )


@dataclass
class Setup:
    """Everything a run needs, built from the config before the first epoch."""

    cfg: RunConfig  # resolved: every default filled in
    data: LoadedData  # as loaded (CPU)
    train_set: TensorSet  # on the training device
    test_set: TensorSet
    model: nn.Module  # the weights being trained
    forward_model: nn.Module  # the same model, compiled when asked for
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    averaged: AveragedModel | None  # moving average of the weights, evaluated instead when set
    loss_fn: LossFn
    normalize: Normalize
    augment: Augment | None
    generator: torch.Generator  # batch order and augmentation draws
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype (bf16) or None for fp32
    wall_seconds: float = 0.0  # wall time of the run so far, over every resumed part

    @property
    def eval_model(self) -> nn.Module:
        """What evaluation, checkpoints and predict use: the averaged weights when enabled."""
        return self.averaged.module if self.averaged is not None else self.model


def prepare(config: RunConfig, log: Callable[[str], None]) -> Setup:
    """Check and resolve the config, load the data onto the device, build model and optimizer."""
    validate(config)
    cfg = copy_config(config)
    t = cfg.train
    # Names are checked before any data is loaded, so a typo costs nothing.
    loss_fn = make_loss(t.loss, t.label_smoothing)
    if t.optimizer not in OPTIMIZERS:
        raise unknown_optimizer(t.optimizer)
    if t.schedule not in SCHEDULES:
        raise unknown_schedule(t.schedule)
    get_factory(cfg.model.name)
    resolve_model_config(cfg)
    device = resolve_device(t.device)
    data = prepare_data(cfg, log)
    torch.manual_seed(t.seed)  # model initialisation
    model = model_from_config(cfg.model, data.image_shape, len(data.classes)).to(device)
    t.precision, amp_dtype = resolve_precision(t.precision, device)
    t.channels_last = resolve_channels_last(t.channels_last, device, model)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), t, device)
    steps_per_epoch = math.ceil(len(data.train) / t.batch_size)
    generator = torch.Generator(device=device).manual_seed(t.seed)
    augment = Augment(cfg.data.augment_flip, cfg.data.augment_translate, generator)
    return Setup(
        cfg=cfg,
        data=data,
        train_set=data.train.to(device),  # the one copy to the device
        test_set=data.test.to(device),
        model=model,
        forward_model=torch.compile(model) if t.compile else model,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, t.schedule, t.epochs * steps_per_epoch, t.warmup_fraction),
        averaged=ema_of(model, t.ema_decay),
        loss_fn=loss_fn,
        normalize=Normalize(cfg.data.mean, cfg.data.std, t.channels_last).to(device),
        augment=augment if augment else None,
        generator=generator,
        device=device,
        amp_dtype=amp_dtype,
    )


def ema_of(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights (and batch-norm statistics), or None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def save_epoch(
    run_dir: Path, s: Setup, history: list[dict[str, float]], progress: EpochProgress | None = None
) -> None:
    """metrics.csv and the checkpoint, both rewritten atomically; `progress`: stopped mid-epoch."""
    write_metrics_csv(run_dir / "metrics.csv", history)
    save_checkpoint(
        run_dir / CHECKPOINT_NAME,
        config=to_dict(s.cfg),
        classes=s.data.classes,
        image_shape=list(s.data.image_shape),
        epoch=len(history),
        finished=len(history) == s.cfg.train.epochs and progress is None,
        model=s.eval_model.state_dict(),
        optimizer=s.optimizer.state_dict(),
        history=history,
        normalization={"mean": s.cfg.data.mean, "std": s.cfg.data.std},
        training_state=capture_training_state(s, progress),
    )


def train(
    config: RunConfig,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Train as `config` says; returns the run directory, history and final test evaluation.

    SIGTERM or Ctrl-C (or `stop.request(...)`) saves a resumable checkpoint at the next step and
    raises Interrupted; `resume` continues such a run.
    """
    s = prepare(config, log)
    cfg = s.cfg
    run_dir = new_run_dir(cfg.out_dir, cfg.run_name or default_run_name(cfg.data.name, cfg.model.name))
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    log(setup_line(s, run_dir))
    return run_epochs(s, run_dir, [], log, progress, stop)


def resume(
    run: str | Path,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Continue a stopped run in its own folder, exactly where it stopped (`tocha train --resume`).

    `overrides` are config values given again on the command line: each must match the run's,
    except `train.epochs`, which may extend a run with a constant learning rate.
    """
    run_dir, ckpt, config = open_resumable(run, overrides or {})
    s = prepare(config, log)
    epoch_progress = restore_training_state(s, ckpt, run_dir)
    for stale in remove_stale_temp_files(run_dir):
        log(f"removed {stale.name}: an unfinished write from an earlier process")
    atomic_write_text(run_dir / "config.yaml", to_yaml(s.cfg))  # the same, or with more epochs
    log(setup_line(s, run_dir))
    where = f"after step {epoch_progress.steps_done}" if epoch_progress and epoch_progress.steps_done else ""
    log(f"resuming at epoch {ckpt['epoch'] + 1}/{s.cfg.train.epochs} {where or 'from its start'}")
    wall = ckpt["training_state"]["wall_seconds"]
    return run_epochs(s, run_dir, ckpt["history"], log, progress, stop, epoch_progress, wall)


def setup_line(s: Setup, run_dir: Path) -> str:
    cfg, t = s.cfg, s.cfg.train
    n_params = sum(p.numel() for p in s.model.parameters())
    return (
        f"{cfg.model.name} ({n_params:,} parameters) on {s.data.name} [{len(s.train_set)} train / "
        f"{len(s.test_set)} test, {s.data.source}] · device {s.device} ({t.precision}"
        f"{', channels_last' if t.channels_last else ''}{', compiled' if t.compile else ''}) · run {run_dir}"
    )


def run_epochs(
    s: Setup,
    run_dir: Path,
    history: list[dict[str, float]],
    log: Callable[[str], None],
    progress: bool | None,
    stop: StopRequest | None,
    epoch_progress: EpochProgress | None = None,
    wall_before: float = 0.0,
) -> TrainResult:
    """The epochs from `len(history) + 1` on: train, evaluate, save; then the plots and summary."""
    t = s.cfg.train
    show_bar = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter() - wall_before
    with stop if stop is not None else StopRequest() as stop_request:
        for epoch in range(len(history) + 1, t.epochs + 1):
            bar = progress_bar(len(s.train_set), f"epoch {epoch}/{t.epochs}", show_bar)
            if bar and epoch_progress:
                bar.update(min(len(s.train_set), epoch_progress.steps_done * t.batch_size))
            result = train_one_epoch(
                s.forward_model,
                s.train_set,
                loss_fn=s.loss_fn,
                optimizer=s.optimizer,
                preprocess=s.normalize,
                batch_size=t.batch_size,
                generator=s.generator,
                augment=s.augment,
                scheduler=s.scheduler,
                averaged=s.averaged,
                amp_dtype=s.amp_dtype,
                on_step=bar.update if bar else None,
                progress=epoch_progress,
                stop_requested=stop_request,
            )
            epoch_progress = None
            if bar:
                bar.close()
            if result.first_nonfinite_step is not None:
                raise diverged(epoch, result.first_nonfinite_step, t.lr, run_dir)
            if result.stopped is not None:
                s.wall_seconds = time.perf_counter() - started
                save_epoch(run_dir, s, history, result.stopped)
                raise Interrupted(
                    f"stopped by {stop_request.name} at epoch {epoch}, step {result.stopped.steps_done}; "
                    f"saved {run_dir / CHECKPOINT_NAME}",
                    stop_request.signum or signal.SIGTERM,
                    f"Continue with: tocha train --resume {run_dir}",
                )
            eval_start = time.perf_counter()
            outputs = predict_logits(
                s.eval_model,
                s.test_set.images,
                s.normalize,
                t.eval_batch_size,
                flip_tta=t.tta_flip,
                amp_dtype=s.amp_dtype,
            )
            final = evaluate_outputs(outputs, s.test_set.labels, s.loss_fn)
            history.append(epoch_row(epoch, result, final, time.perf_counter() - eval_start))
            s.wall_seconds = time.perf_counter() - started
            save_epoch(run_dir, s, history)
            log(epoch_line(history[-1], t.epochs))
        # Still inside: a signal now only sets the flag, and the finished run writes its last files.
        n_params = sum(p.numel() for p in s.model.parameters())
        write_outputs(
            run_dir, s.cfg, s.data, history, final, n_params, str(s.device), time.perf_counter() - started
        )
    return TrainResult(run_dir, history, final, s.data, s.cfg)


def diverged(epoch: int, step: int, lr: float, run_dir: Path) -> DivergedError:
    """The error for a NaN/inf loss; raised before anything of that epoch is written."""
    kept = (
        f"{run_dir / CHECKPOINT_NAME} keeps the last state saved before it."
        if (run_dir / CHECKPOINT_NAME).is_file()
        else "No checkpoint was written."
    )
    return DivergedError(
        f"training diverged: the loss became NaN or infinite at epoch {epoch}, step {step}; "
        f"try a smaller learning rate (train.lr is {lr}). {kept}",
        epoch,
        step,
    )


def epoch_row(epoch: int, result: EpochResult, test: Evaluation, eval_seconds: float) -> dict[str, float]:
    """One line of metrics.csv."""
    return {
        "epoch": epoch,
        "train_loss": result.loss,
        "train_accuracy": result.accuracy,
        "test_loss": test.loss,
        "test_accuracy": test.accuracy,
        "seconds": result.seconds,
        "samples_per_second": result.samples / result.seconds,
        "eval_seconds": eval_seconds,
    }


def write_outputs(
    run_dir: Path,
    cfg: RunConfig,
    data: LoadedData,
    history: list[dict[str, float]],
    final: Evaluation,
    n_params: int,
    device: str,
    seconds: float,
) -> None:
    """Curves and confusion-matrix PNGs and summary.json, once training is over."""
    title = f"{cfg.model.name} on {data.name}"
    plot_curves(history, run_dir / "curves.png", title)
    plot_confusion(
        final.confusion,
        data.classes,
        run_dir / "confusion_matrix.png",
        f"{title}: test accuracy {100 * final.accuracy:.2f}%",
    )
    summary = {
        "dataset": data.name,
        "data_source": data.source,
        "model": cfg.model.name,
        "parameters": n_params,
        "epochs": len(history),
        "final_test_accuracy": final.accuracy,
        "final_test_loss": final.loss,
        "best_test_accuracy": max(r["test_accuracy"] for r in history),
        "train_seconds": sum(r["seconds"] for r in history),
        "wall_seconds": seconds,
        "device": device,
        "tocha": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
