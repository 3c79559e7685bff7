"""`tocha train`: the epoch driver. Each epoch trains, evaluates, and saves metrics.csv and the
checkpoint; a finished run adds its figures and summary.json.

SIGTERM or Ctrl-C (or `stop.request(...)`) saves a resumable checkpoint at the next step and
raises Interrupted; `resume` continues such a run exactly. A loss that turns NaN/inf stops the run
before anything of that epoch is written.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tocha import __version__
from tocha.config import RunConfig
from tocha.data.tensorset import LoadedData
from tocha.errors import DivergedError, Interrupted, TochaError
from tocha.runs import RunFolder, RunSummary
from tocha.runs.records import epoch_row, metric_columns
from tocha.tasks.metrics import Evaluation
from tocha.training import distributed
from tocha.training.console import epoch_line, progress_bar, resuming_line, setup_line, shows_epoch
from tocha.training.distributed import Ranks, ranks_from_env
from tocha.training.interrupt import StopRequest
from tocha.training.loop import train_one_epoch
from tocha.training.resume import open_resumable
from tocha.training.setup import Setup, build_setup
from tocha.training.state import restore, to_checkpoint
from tocha.training.tally import EpochTally

Log = Callable[[str], None]


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, float]]
    final: Evaluation
    data: LoadedData
    config: RunConfig

    def history_frame(self) -> Any:
        """The history as a pandas DataFrame (pandas is not a dependency of tocha: install it)."""
        try:
            import pandas as pd
        except ImportError:
            raise TochaError("history_frame() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.history)


def train(config: RunConfig, log: Log = print, progress: bool | None = None,
          stop: StopRequest | None = None) -> TrainResult:  # fmt: skip
    """Train as `config` says; returns the run folder, the history and the final test evaluation.
    Started by torchrun, this is one rank of a run on several processes."""
    ranks = ranks_from_env()
    log = log if ranks.main else quiet  # the other ranks print nothing but errors
    s, finished = None, False
    try:
        s = build_setup(config, log, ranks)
        folder = new_run_folder(s)
        with folder.writing("training"):  # a `--resume` of this run while it trains is refused
            folder.write_config(s.cfg)
            log(setup_line(s, folder.path))
            result = run_epochs(s, folder, [], log, progress, stop)
        finished = True
        return result
    finally:
        if ranks.active:
            leave_group(s, finished)


def resume(run: str | Path, overrides: dict[str, Any] | None = None, log: Log = print,
           progress: bool | None = None, stop: StopRequest | None = None) -> TrainResult:  # fmt: skip
    """Continue a stopped run in its own folder, exactly where it stopped (`tocha train --resume`).

    `overrides` are config values given again on the command line: each must match the run's,
    except `train.epochs`, which may extend a run with a constant learning rate.
    """
    ranks = ranks_from_env()
    log = log if ranks.main else quiet
    path = Path(run) if Path(run).is_dir() else Path(run).parent
    folder = RunFolder(path, writer=ranks.main)
    with (
        folder.writing("training") if path.is_dir() else contextlib.nullcontext()
    ):  # never two writers in one folder (a missing one is open_resumable's to report)
        return resume_locked(run, overrides, log, progress, stop, ranks)


def resume_locked(run: str | Path, overrides: dict[str, Any] | None, log: Log, progress: bool | None,
                  stop: StopRequest | None, ranks: Ranks) -> TrainResult:  # fmt: skip
    folder, ckpt, config = open_resumable(run, overrides or {}, ranks)
    folder = RunFolder(folder.path, writer=ranks.main)
    s, finished = None, False
    try:
        s = build_setup(config, log, ranks, initialise=False)  # its own weights follow, not init_from's
        stopped = restore(s, ckpt, str(folder.path))
        for stale in folder.remove_stale_temp_files():
            log(f"removed {stale.name}: an unfinished write from an earlier process")
        folder.write_config(s.cfg)  # the same, or with more epochs
        log(setup_line(s, folder.path))
        if ckpt.epoch >= s.cfg.train.epochs and stopped is None:
            log("its training was finished; writing the summary and figures it did not get to write")
        else:
            log(resuming_line(ckpt.epoch + 1, s.cfg.train.epochs, stopped.steps_done if stopped else 0))
        wall = ckpt.training.wall_seconds if ckpt.training else 0.0
        result = run_epochs(s, folder, ckpt.history, log, progress, stop, stopped, wall)
        finished = True
        return result
    finally:
        if ranks.active:
            leave_group(s, finished)


def leave_group(s: Setup | None, finished: bool) -> None:
    """This rank's last step on several processes: its DDP wrapper dropped, then the group left
    (the order matters: see `distributed.stop`)."""
    if s is not None:
        s.forward_model = s.model
    distributed.stop(finished)


def quiet(_line: str) -> None:
    pass


def new_run_folder(s: Setup) -> RunFolder:
    """The run's new folder, made by rank 0 alone; every rank learns its name, rank 0 writes in it."""
    name = s.cfg.run_name or RunFolder.default_name(s.cfg.data.name, s.cfg.model.name)
    if not s.ranks.active:
        return RunFolder.create(s.cfg.out_dir, name)
    path = distributed.broadcast(str(RunFolder.create(s.cfg.out_dir, name).path) if s.ranks.main else None)
    return RunFolder(path, writer=s.ranks.main)


def run_epochs(s: Setup, folder: RunFolder, history: list[dict[str, float]], log: Log,
               progress: bool | None, stop: StopRequest | None, tally: EpochTally | None = None,
               wall_before: float = 0.0) -> TrainResult:  # fmt: skip
    """The epochs from `len(history) + 1` on (`tally`: one stopped part-way): train, evaluate,
    save; then the figures and summary.json."""
    epochs = s.cfg.train.epochs
    show_bar = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter() - wall_before
    columns = metric_columns(s.task.metrics)

    def save(stopped: EpochTally | None = None) -> None:
        # The checkpoint first: it is the truth, and metrics.csv is rewritten from its history.
        folder.write_checkpoint(to_checkpoint(s, history, stopped, time.perf_counter() - started))
        folder.write_metrics(history, columns)

    final = None
    with stop if stop is not None else StopRequest() as stop_request:
        for epoch in range(len(history) + 1, epochs + 1):
            s.enter_epoch(epoch)  # fine-tuning: the head alone first, then everything
            tally = tally or s.new_epoch()
            train_metrics = train_epoch(s, tally, stop_request, f"epoch {epoch}/{epochs}", show_bar)
            if (bad_step := tally.first_nonfinite_step()) is not None:
                raise diverged(epoch, bad_step, s.cfg.train.lr, folder)
            if train_metrics is None:  # stopped between two steps
                save(stopped=tally)
                raise Interrupted(
                    f"stopped by {stop_request.name} at epoch {epoch}, step {tally.steps_done}; "
                    f"saved {folder.file(folder.CHECKPOINT)}",
                    stop_request.signum or signal.SIGTERM,
                    f"Continue with: tocha train --resume {folder.path}",
                )
            eval_start = time.perf_counter()
            final = evaluate_test(s)
            eval_seconds = time.perf_counter() - eval_start
            history.append(epoch_row(epoch, train_metrics, final.metrics(), tally.seconds,
                                     s.global_samples_per_epoch, eval_seconds))  # fmt: skip
            save()
            if shows_epoch(epoch, epochs, s.cfg.train.log_every):
                log(epoch_line(history[-1], epochs))
            tally = None
        if final is None:  # trained to the end before a kill: only its last files are missing
            final = evaluate_test(s)
            folder.write_metrics(history, columns)  # from the checkpoint's history: the truth
        # Still inside: a signal now only sets the flag, and the finished run writes its last files.
        folder.write_figures(history, final, s.data.classes, f"{s.cfg.model.name} on {s.data.name}")
        folder.write_summary(summarize(s, history, final, time.perf_counter() - started))
    return TrainResult(folder.path, history, final, s.data, s.cfg)


def train_epoch(
    s: Setup, tally: EpochTally, stop: StopRequest, desc: str, show_bar: bool
) -> dict[str, float] | None:
    """Run the loop over the rest of the epoch; its train metrics, or None if it stopped early
    (a stop request, or a NaN/inf loss). `tally.seconds` counts the time, over resumed parts too."""
    share = s.cfg.train.batch_size // s.world_size
    bar = progress_bar(s.samples_per_epoch, desc, show_bar and s.ranks.main, tally.steps_done * share)
    start = time.perf_counter() - tally.seconds
    if s.ranks.active:  # every rank stops at the same step, agreed; none alone on its own NaN
        tally.local_divergence = False
        stop = distributed.AgreedStop(stop, lambda: tally.first_bad_step, s.device)
    train_one_epoch(s.forward_model, s.batches(tally), s.task, s.opt, tally, stop=stop,
                    on_step=bar.update if bar else None, keep_eval=s.keep_eval)  # fmt: skip
    if s.ranks.active:  # the epoch's sums over every rank: the one collective of the epoch
        tally.first_bad_step = distributed.reduce_sums(tally.sums, tally.first_bad_step)
    complete = tally.steps_done == s.steps_per_epoch
    metrics = tally.metrics(s.global_samples_per_epoch) if complete else None  # one wait for the device
    tally.seconds = time.perf_counter() - start
    if bar:
        bar.close()
    return metrics


def evaluate_test(s: Setup) -> Evaluation:
    """The test split through the evaluated model; with several processes each computes its own
    contiguous part (nothing counted twice) and all of them get every output."""
    images, labels, batch = s.test_set.images, s.test_set.labels, s.cfg.train.eval_batch_size
    if not s.ranks.active:
        return s.task.evaluate(s.evaluator.logits(images, batch), labels)
    part = images[distributed.shard(len(images), s.ranks)]
    mine = (
        s.evaluator.logits(part, batch) if len(part) else torch.empty(0, len(s.data.classes), device=s.device)
    )
    return s.task.evaluate(distributed.gather_rows(mine, len(images)), labels)


def diverged(epoch: int, step: int, lr: float, folder: RunFolder) -> DivergedError:
    """The error for a NaN/inf loss; raised before anything of that epoch is written."""
    kept = (
        f"{folder.file(folder.CHECKPOINT)} keeps the last state saved before it."
        if folder.has_checkpoint()
        else "No checkpoint was written."
    )
    return DivergedError(
        f"training diverged: the loss became NaN or infinite at epoch {epoch}, step {step}; "
        f"try a smaller learning rate (train.lr is {lr}). {kept}",
        epoch,
        step,
    )


def summarize(s: Setup, history: list[dict[str, float]], final: Evaluation, seconds: float) -> RunSummary:
    """summary.json of a finished run."""
    primary = s.task.primary
    return RunSummary(
        dataset=s.data.name,
        data_source=s.data.source,
        model=s.cfg.model.name,
        parameters=s.n_params,
        epochs=len(history),
        final_test=final.metrics(),
        best_test={primary: max(row[f"test_{primary}"] for row in history)},
        train_seconds=sum(row["seconds"] for row in history),
        wall_seconds=seconds,
        device=str(s.device),
        versions={"tocha": __version__, "torch": torch.__version__, "python": platform.python_version()},
        threads=torch.get_num_threads(),
        classes=0 if s.data.task == "regression" else len(s.data.classes),
    )
