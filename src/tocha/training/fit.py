"""The training story in one scroll: `fit` trains the epochs a run has left, scores the validation
split after each (every choice is made on it: the weights kept, an early stop, a plateau's rate),
saves the checkpoint and metrics.csv, and once training ends scores the test split once on the kept
weights and writes the figures and summary.json. A fresh run and a resumed one both come here: a
resumed run is its `RunState` restored from the checkpoint, then the same `fit`.

SIGTERM or Ctrl-C (or `stop.request(...)`) saves a resumable checkpoint at the next step and raises
Interrupted; a loss that turns NaN/inf stops the run before anything of that epoch is written.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import RunConfig
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.runs import Checkpoint, RunFolder, RunSummary
from tocha.runs.records import epoch_row, metric_columns
from tocha.tasks import Evaluation, Task
from tocha.training.console import diverged, epoch_line, progress_bar, shows_epoch, stopped_there
from tocha.training.interrupt import StopRequest
from tocha.training.keeper import NONE, Keeper
from tocha.training.loop import train_one_epoch
from tocha.training.setup import Setup
from tocha.training.state import restore, to_checkpoint
from tocha.training.tally import EpochTally
from tocha.version import __version__

Log = Callable[[str], None]
Observer = Callable[[dict[str, float], str, bool], None]  # (epoch's row, monitored metric, higher is better)


@dataclass
class TrainResult:
    run_dir: Path | None  # None after `--fast-dev-run`: nothing written
    history: list[dict[str, float]]
    final: Evaluation  # the test split after the last epoch, in the task's metrics
    data: LoadedData
    config: RunConfig
    task: Task  # what the numbers mean: `task.headline(final)` is the done line's
    model: nn.Module | None = None  # the trained network (the weights as trained, not their average)
    given: Any = None  # the module or function it was given as in Python, to rebuild it in this process
    busy: tuple[int, int] | None = None  # (threads, usual): fewer CPU threads, as other work was running
    pieces: Any = None  # the loss and optimizer factory given in Python (`training.pieces`), or None

    def history_frame(self) -> Any:
        """The history as a pandas DataFrame (pandas is not a dependency of tocha: install it)."""
        try:
            import pandas as pd
        except ImportError:
            raise TochaError("history_frame() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.history)


@dataclass
class RunState:
    """Where a run stands: nothing yet for a fresh run; what its checkpoint saved for a resumed one."""

    history: list[dict[str, float]] = field(default_factory=list)  # a row per finished epoch
    stopped: EpochTally | None = None  # an epoch stopped part-way, to go on from its next step
    wall_seconds: float = 0.0  # what the run took before this process
    selection: dict[str, Any] | None = None  # the choices made on validation (kept epoch, early stop)

    @classmethod
    def resumed(cls, s: Setup, ckpt: Checkpoint, where: str) -> RunState:
        """The state a checkpoint saved, put back into the freshly built setup `s` (`state.restore`)."""
        stopped = restore(s, ckpt, where)
        wall = ckpt.training.wall_seconds if ckpt.training else 0.0
        return cls(ckpt.history, stopped, wall, ckpt.selection)


def fit(s: Setup, folder: RunFolder, state: RunState, log: Log, *, progress: bool | None = None,
        stop: StopRequest | None = None, observe: Observer | None = None) -> TrainResult:  # fmt: skip
    """The epochs from `len(state.history) + 1` on, then the run's last files (see the module).
    `observe`: called with each epoch's row once it is saved (a search's pruner may raise there)."""
    t, epochs, history, tally = s.cfg.train, s.cfg.train.epochs, state.history, state.stopped
    show_bar = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter() - state.wall_seconds
    norms = ("grad_norm_mean", "grad_norm_max") if t.clip_grad_norm is not None else ()
    columns = metric_columns(s.task.metrics, scored_splits(s), norms, held_out=s.task.held_out)
    keeper = Keeper(t.monitor, s.learner.higher, t.keep == "best", t.min_delta, t.early_stop)
    keeper.restore(state.selection, history)
    tb = tracker(s, folder, len(history), tally)

    def save(stopped: EpochTally | None = None) -> None:
        # The checkpoint first: it is the truth, and metrics.csv is rewritten from its history.
        folder.write_checkpoint(
            to_checkpoint(s, history, stopped, time.perf_counter() - started, keeper=keeper)
        )
        folder.write_metrics(history, columns)

    with stop if stop is not None else StopRequest() as stop_request:
        for epoch in range(len(history) + 1, epochs + 1):
            if keeper.stopped_early:  # a resumed run that had stopped early: only its last files to write
                break
            s.learner.enter_epoch(epoch)  # fine-tuning: the head alone first, then everything
            reading = time.perf_counter()
            s.data.read_again(epoch)  # --stream: your Dataset's training split, read for this epoch
            tally = tally or s.data.new_epoch(s.task)
            tally.seconds += time.perf_counter() - reading  # an epoch's time counts its reading
            on_step = tb.step_logger(epoch, tally, s.learner.opt.optimizer) if tb else None
            train_metrics = train_epoch(
                s, tally, stop_request, f"epoch {epoch}/{epochs}", show_bar=show_bar, on_step=on_step
            )
            if (bad_step := tally.first_nonfinite_step()) is not None:
                raise diverged(epoch, bad_step, t.lr, folder)
            if train_metrics is None:  # stopped between two steps: saved, and the way on said
                save(stopped=tally)
                if tb:
                    tb.stop()
                stop_request.acted = True
                raise stopped_there(
                    stop_request, epoch, tally.steps_done, folder, world_size=s.runtime.world_size
                )
            eval_start = time.perf_counter()
            scores = {"train": train_metrics, **epoch_scores(s)}
            history.append(epoch_row(epoch, scores, tally.seconds, s.data.global_samples_per_epoch,
                                     eval_seconds=time.perf_counter() - eval_start))  # fmt: skip
            best = keeper.observe(history[-1], lambda: s.learner.evaluator.model.state_dict())
            if s.learner.opt.plateau is not None:
                s.learner.opt.plateau.step(history[-1][t.monitor])
            if epoch < epochs:  # stopping at the last epoch is no early stop
                keeper.should_stop(epoch)
            save()
            if tb:
                tb.epoch(history[-1])
            if observe is not None:
                observe(history[-1], keeper.monitor, s.learner.higher)
            if shows_epoch(epoch, epochs, t.log_every) or keeper.stopped_early:
                log(epoch_line(history[-1], epochs, s.task, best))
            if keeper.stopped_early:
                log(keeper.stop_line(s.task.format))
            tally = None
        # Still inside: a signal now only sets the flag, and the finished run writes its last files.
        final = finish(
            s, folder, keeper, history, seconds=time.perf_counter() - started, columns=columns, tb=tb, log=log
        )
    if stop_request.late and stop is None:  # nobody outside to hand it to: said, and the run ends well
        log(f"note: {stop_request.name} arrived after training, as the run wrote its last files: they are "
            "all written, the run is complete")  # fmt: skip
    return TrainResult(folder.path, history, final, s.loaded, s.cfg, s.task, s.model, s.architecture.given,
                       s.runtime.busy)  # fmt: skip


def finish(s: Setup, folder: RunFolder, keeper: Keeper, history: list[dict[str, float]], *, seconds: float,
           columns: list[str], tb: Any, log: Log) -> Evaluation:  # fmt: skip
    """A trained run's last files: the test split scored once on the kept weights, metrics.csv, the
    figures, summary.json (and TensorBoard's scores)."""
    if not history:
        raise TochaError(f"{folder.path} has no finished epoch to score")
    final = score_test_once(s, keeper, len(history))
    folder.write_metrics(history, columns)  # from the checkpoint's history: the truth
    log(kept_line(s, keeper, history, final))
    title = f"{s.architecture.label} on {s.loaded.name}"
    kept = keeper.kept_epoch(len(history)) if keeper.monitor != NONE else 0
    figures = folder.write_figures(
        lambda: s.task.run_figures(history, final, s.data.classes, title, kept_epoch=kept)
    )
    summary = summarize(s, history, final, seconds, keeper=keeper)
    folder.write_summary(summary)
    if tb:
        scores = {**{f"val_{k}": v for k, v in summary.val.items()},
                  **{f"test_{k}": v for k, v in summary.final_test.items()}}  # fmt: skip
        tb.finish(s.cfg, scores, figures, len(history) * s.data.steps_per_epoch)
    return final


def scored_splits(s: Setup) -> tuple[str, ...]:
    """The splits an epoch's row scores: train and validation; the test split too where it is
    scored every epoch (`--test-every-epoch`, or a run without a validation split)."""
    val = ("val",) if s.data.val_set is not None else ()
    test = ("test",) if s.cfg.train.test_every_epoch or s.data.val_set is None else ()
    return ("train", *val, *test)


def epoch_scores(s: Setup) -> dict[str, dict[str, float]]:
    """This epoch's held-out scores: the validation split's, and the test split's where it is
    scored every epoch (a curve only: no choice is ever made on it)."""
    splits = scored_splits(s)
    scores = {}
    if "val" in splits:
        scores["val"] = evaluate_split(s, s.data.val_set).metrics()  # type: ignore[arg-type]
    if "test" in splits:
        scores["test"] = evaluate_split(s, s.data.test_set).metrics()
    return scores


def score_test_once(s: Setup, keeper: Keeper, last: int) -> Evaluation:
    """The test split, scored once after training, on the kept weights (the best epoch's, loaded
    into the evaluated model; or the last)."""
    if keeper.weights and keeper.kept_epoch(last) != last:
        s.learner.evaluator.model.load_state_dict(keeper.weights)
    return evaluate_split(s, s.data.test_set)


def kept_line(s: Setup, keeper: Keeper, history: list[dict[str, float]], final: Evaluation) -> str:
    """What the run keeps and its test score: said once, after the last epoch."""
    kept = keeper.kept_epoch(len(history))
    if keeper.monitor == NONE:
        return f"no validation split: the last weights kept; test split: {s.task.headline(final)}"
    value = s.task.format(keeper.monitor.removeprefix("val_"), history[kept - 1][keeper.monitor])
    return (f"kept epoch {kept}'s weights ({keeper.monitor} {value}); test split, scored once: "
            f"{s.task.headline(final)}")  # fmt: skip


def tracker(s: Setup, folder: RunFolder, epochs_done: int, stopped: EpochTally | None) -> Any:
    """The run's TensorBoard log (`--log tensorboard`, written by the folder's writer), from the
    step its history and a stopped epoch reach; None without one."""
    if s.cfg.train.log != "tensorboard" or not folder.writer:
        return None
    from tocha.training.tensorboard_log import TensorBoardLog

    position = epochs_done * s.data.steps_per_epoch + (stopped.steps_done if stopped else 0)
    return TensorBoardLog(folder.path, s.data.steps_per_epoch, position)


def train_epoch(
    s: Setup,
    tally: EpochTally,
    stop: StopRequest,
    desc: str,
    *,
    show_bar: bool,
    on_step: Callable[[], None] | None = None,
) -> dict[str, float] | None:
    """Run the loop over the rest of the epoch; its train metrics, or None if it stopped early
    (a stop request, or a NaN/inf loss). `tally.seconds` counts the time, over resumed parts too."""
    data, learner, runtime = s.data, s.learner, s.runtime
    share = data.batch_size // runtime.world_size  # a full batch's (every batch but a short last one)
    bar = progress_bar(data.samples_per_epoch(runtime.rank), desc, show_bar and runtime.main,
                       tally.steps_done * share)  # fmt: skip
    start = time.perf_counter() - tally.seconds
    train_one_epoch(
        learner.forward_model,
        data.batches(tally, runtime.rank),
        s.task,
        learner.opt,
        tally=tally,
        stop=runtime.stop_policy(stop, tally),
        on_step=stepped(bar, on_step),
        keep_eval=learner.keep_eval,
    )
    complete = tally.steps_done == data.steps_per_epoch
    runtime.finish_epoch(tally, complete)  # with several processes, every rank's sums added up
    metrics = tally.metrics(data.global_samples_per_epoch) if complete else None  # one wait for the device
    tally.seconds = time.perf_counter() - start
    if bar:
        bar.close()
    return metrics


def stepped(bar: Any, also: Callable[[], None] | None) -> Callable[[int], None] | None:
    """What each step does after it is counted: the bar moves, a tracker keeps its loss."""
    if bar is None and also is None:
        return None

    def on_step(samples: int) -> None:
        if bar is not None:
            bar.update(samples)
        if also is not None:
            also()

    return on_step


def evaluate_split(s: Setup, split: TensorSet) -> Evaluation:
    """A held-out split through the evaluated model (each process its part with several), scored."""
    evaluator = s.learner.evaluator
    width = s.task.output_size(s.data.classes)
    outputs = s.runtime.outputs(lambda images: evaluator.logits(images, s.cfg.train.eval_batch_size),
                                split.images, width)  # fmt: skip
    return s.task.evaluate(outputs, split.labels)


def summarize(s: Setup, history: list[dict[str, float]], final: Evaluation, seconds: float,
              *, keeper: Keeper) -> RunSummary:  # fmt: skip
    """summary.json of a finished run."""
    kept = keeper.kept_epoch(len(history))
    val = {m: history[kept - 1][f"val_{m}"] for m in s.task.metrics} if s.data.val_set is not None else {}
    return RunSummary(
        dataset=s.loaded.name,
        data_source=s.loaded.source,
        model=s.cfg.model.name,
        parameters=s.learner.n_params,
        epochs=len(history),
        final_test=final.metrics(),
        val=val,
        train_seconds=sum(row["seconds"] for row in history),
        wall_seconds=seconds,
        device=str(s.device),
        versions={"tocha": __version__, "torch": torch.__version__, "python": platform.python_version()},
        threads=torch.get_num_threads(),
        classes=s.task.classes_counted(s.data.classes),
        task=s.task.name,
        selection=keeper.monitor,
        kept_epoch=kept,
        stopped_early=keeper.stopped_early,
        initial_weights="given" if isinstance(s.architecture.given, nn.Module) else "seeded",
    )
