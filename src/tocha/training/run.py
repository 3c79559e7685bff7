"""`tocha train`: the epoch driver. Each epoch trains, evaluates, and saves metrics.csv and the
checkpoint; a finished run adds its figures and summary.json.

SIGTERM or Ctrl-C (or `stop.request(...)`) saves a resumable checkpoint at the next step and
raises Interrupted; `resume` continues such a run exactly. A loss that turns NaN/inf stops the run
before anything of that epoch is written.
"""

from __future__ import annotations

import contextlib
import itertools
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

from tocha.config import RunConfig
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import DivergedError, Interrupted, TochaError
from tocha.formats import EXPORTS, FORMATS
from tocha.models.architecture import Architecture
from tocha.models.code_trust import CodeTrust
from tocha.models.user import recorded_source
from tocha.runs import RunFolder, RunSummary
from tocha.runs.records import epoch_row, metric_columns
from tocha.tasks import Evaluation, Task
from tocha.training.console import epoch_line, progress_bar, resuming_line, setup_line, shows_epoch
from tocha.training.interrupt import StopRequest
from tocha.training.keeper import NONE, Keeper
from tocha.training.loop import train_one_epoch
from tocha.training.resume import open_resumable
from tocha.training.runtime import Runtime
from tocha.training.setup import Setup, build_setup
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

    def history_frame(self) -> Any:
        """The history as a pandas DataFrame (pandas is not a dependency of tocha: install it)."""
        try:
            import pandas as pd
        except ImportError:
            raise TochaError("history_frame() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.history)


def train(config: RunConfig, log: Log = print, progress: bool | None = None,
          stop: StopRequest | None = None, given: Any = None, observe: Observer | None = None,
          trust: CodeTrust = CodeTrust.RECORDED,
          checked: Architecture | None = None) -> TrainResult:  # fmt: skip
    """Train as `config` says; returns the run folder, the history and the final test evaluation.
    Started by torchrun, this is one rank of a run on several processes. `given`: the model as an
    `nn.Module` (trained as it is) or a function returning one, from Python. `observe`: called with
    each epoch's row once it is saved, the validation metric choices are made on and whether higher
    is better (a search's pruner: it may raise to end the run there). `trust`: who chose a user's
    model's code (`models.code_trust`: named on this command, `--trust-code`, or a record signed here);
    `checked`: its model as an earlier plan checked it (compare's), not built again to check it."""
    runtime = Runtime.of_this_process()
    log = runtime.log(log)  # the other ranks print nothing but errors
    s, finished = None, False
    try:
        s = build_setup(config, log, runtime, given=given, trust=trust, checked=checked)
        if s.cfg.train.fast_dev_run:  # before any folder: nothing is written
            finished = True
            return fast_dev_run(s, log)
        folder = runtime.new_folder(
            s.cfg.out_dir, s.cfg.run_name or RunFolder.default_name(s.cfg.data.name, s.cfg.model.name)
        )
        with folder.writing("training"):  # a `--resume` of this run while it trains is refused
            folder.write_config(s.cfg)
            if s.architecture.own:
                folder.write_model_record(recorded_source(s.cfg.model), repr(s.model))
            log(setup_line(s.cfg, s.learner.n_params, s.data, s.device, folder.path))
            result = run_epochs(s, folder, [], log, progress, stop, observe=observe)
        finished = True
        return result
    except RuntimeError as e:
        raise (runtime.failed(e) or e) from None
    finally:
        runtime.leave(finished, lambda: drop_wrapper(s))


def fast_dev_run(s: Setup, log: Log) -> TrainResult:
    """`--fast-dev-run`: one training step, then one batch of the validation split and one of the
    test split through the evaluated model; every part runs once, nothing is written. The result's
    `run_dir` is None."""
    tally = s.data.new_epoch(s.task)
    first = itertools.islice(s.data.batches(tally, s.runtime.rank), 1)
    train_one_epoch(s.learner.forward_model, first, s.task, s.learner.opt, tally,
                    keep_eval=s.learner.keep_eval)  # fmt: skip
    s.runtime.finish_epoch(tally)
    loss = tally.metrics(min(s.data.batch_size, len(s.data.train_set)))["loss"]
    said = [f"1 training step (loss {loss:.4f})"]
    final = None
    for name, split in (("validation", s.data.val_set), ("test", s.data.test_set)):
        if split is None:
            continue
        index = torch.arange(min(s.cfg.train.eval_batch_size, len(split)), device=split.labels.device)
        final = evaluate_split(s, TensorSet(split.images[index], split.labels[index]))
        said.append(f"1 {name} batch ({s.task.headline(final)})")
    log(f"fast dev run: {', '.join(said)}: every part ran; nothing was written")
    return TrainResult(None, [], final, s.loaded, s.cfg, s.task, s.model)  # type: ignore[arg-type]


def stale_exports(run_dir: Path) -> list[Path]:
    """The exports `tocha export` wrote into the run folder (model.onnx, .pt2...): a resumed run
    goes on past the weights they hold."""
    suffixes = {FORMATS[name].suffix for name in EXPORTS}
    return sorted(p for p in run_dir.glob("model.*") if p.suffix in suffixes)


def resume(run: str | Path, overrides: dict[str, Any] | None = None, log: Log = print,
           progress: bool | None = None, stop: StopRequest | None = None, given: Any = None,
           trust_code: bool = False) -> TrainResult:  # fmt: skip
    """Continue a stopped run in its own folder, exactly where it stopped (`tocha train --resume`).

    `overrides` are config values given again on the command line: each must match the run's,
    except `train.epochs`, which may extend a run with a constant learning rate, and `model.file`
    (the user's model's code, trusted because it is named; its weights are checked). `given`: the
    model given in Python again, for a run trained from a Python object. `trust_code`: run the model
    code the run records though it was not recorded on this machine (`models.code_trust`).
    """
    runtime = Runtime.of_this_process()
    log = runtime.log(log)
    folder = runtime.folder(Path(run).parent if Path(run).is_file() else Path(run))  # a checkpoint: its run
    with (
        folder.writing("training") if folder.path.is_dir() else contextlib.nullcontext()
    ):  # never two writers in one folder (a missing one is open_resumable's to report)
        ckpt, config = open_resumable(folder, overrides or {}, runtime.ranks)
        s, finished = None, False
        try:
            trust = resumed_trust(overrides or {}, trust_code)
            s = build_setup(config, log, runtime, initialise=False, given=given,  # its own weights follow
                            source_copy=folder.file(folder.MODEL_SOURCE), trust=trust)  # fmt: skip
            stopped = restore(s, ckpt, str(folder.path))
            for stale in folder.remove_stale_temp_files():
                log(f"removed {stale.name}: an unfinished write from an earlier process")
            folder.write_config(s.cfg)  # the same, or with more epochs
            if trust is CodeTrust.NAMED:  # --model-file: its copy is what a later change is told against
                folder.write_model_record(recorded_source(s.cfg.model), repr(s.model))
            log(setup_line(s.cfg, s.learner.n_params, s.data, s.device, folder.path))
            if ckpt.epoch >= s.cfg.train.epochs and stopped is None:
                log("its training was finished; writing the summary and figures it did not get to write")
            else:
                log(resuming_line(ckpt.epoch + 1, s.cfg.train.epochs, stopped.steps_done if stopped else 0))
            for export in stale_exports(folder.path):
                log(f"note: {export.name} holds the weights of before this resume; once it is done, tocha "
                    f"export {folder.path} --format {export.suffix[1:]} --force replaces it")  # fmt: skip
            wall = ckpt.training.wall_seconds if ckpt.training else 0.0
            result = run_epochs(s, folder, ckpt.history, log, progress, stop, stopped, wall, ckpt.selection)
            finished = True
            return result
        except RuntimeError as e:
            raise (runtime.failed(e) or e) from None
        finally:
            runtime.leave(finished, lambda: drop_wrapper(s))


def resumed_trust(overrides: dict[str, Any], trust_code: bool) -> CodeTrust:
    """Who chose a resumed run's model code: `--model-file` names it; `--trust-code` trusts the
    record; else the record must be signed here."""
    if overrides.get("model.file"):
        return CodeTrust.NAMED
    return CodeTrust.TRUSTED if trust_code else CodeTrust.RECORDED


def drop_wrapper(s: Setup | None) -> None:
    """The loop's DDP wrapper let go of before the process group is left (see `distributed.stop`)."""
    if s is not None:
        s.learner.forward_model = s.model


def run_epochs(s: Setup, folder: RunFolder, history: list[dict[str, float]], log: Log,
               progress: bool | None, stop: StopRequest | None, tally: EpochTally | None = None,
               wall_before: float = 0.0, selection: dict[str, Any] | None = None,
               observe: Observer | None = None) -> TrainResult:  # fmt: skip
    """The epochs from `len(history) + 1` on (`tally`: one stopped part-way): train, score the
    validation split (every choice is made on it: the kept weights, an early stop, a plateau's
    rate), save; then the test split, scored once on the kept weights, the figures and
    summary.json. `selection`: a resumed run's record of its choices."""
    t, epochs = s.cfg.train, s.cfg.train.epochs
    show_bar = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter() - wall_before
    norms = ("grad_norm_mean", "grad_norm_max") if t.clip_grad_norm is not None else ()
    columns = metric_columns(s.task.metrics, scored_splits(s), norms)
    keeper = Keeper(t.monitor, s.learner.higher, t.keep == "best", t.min_delta, t.early_stop)
    keeper.restore(selection, history)
    tb = tracker(s, folder, len(history), tally)

    def save(stopped: EpochTally | None = None) -> None:
        # The checkpoint first: it is the truth, and metrics.csv is rewritten from its history.
        folder.write_checkpoint(to_checkpoint(s, history, stopped, time.perf_counter() - started, keeper))
        folder.write_metrics(history, columns)

    final = None
    with stop if stop is not None else StopRequest() as stop_request:
        for epoch in range(len(history) + 1, epochs + 1):
            if keeper.stopped_early:  # a resumed run that had stopped early: only its last files to write
                break
            s.learner.enter_epoch(epoch)  # fine-tuning: the head alone first, then everything
            tally = tally or s.data.new_epoch(s.task)
            train_metrics = train_epoch(
                s,
                tally,
                stop_request,
                f"epoch {epoch}/{epochs}",
                show_bar,
                tb.step_logger(epoch, tally, s.learner.opt.optimizer) if tb else None,
            )
            if (bad_step := tally.first_nonfinite_step()) is not None:
                raise diverged(epoch, bad_step, t.lr, folder)
            if train_metrics is None:  # stopped between two steps
                save(stopped=tally)
                if tb:
                    tb.stop()
                stop_request.acted = True
                raise Interrupted(
                    f"stopped by {stop_request.name} at epoch {epoch}, step {tally.steps_done}; "
                    f"saved {folder.file(folder.CHECKPOINT)}",
                    stop_request.signum or signal.SIGTERM,
                    f"Continue with: {continue_command(folder, s.runtime.world_size)}",
                )
            eval_start = time.perf_counter()
            scores = {"train": train_metrics, **epoch_scores(s)}
            history.append(epoch_row(epoch, scores, tally.seconds, s.data.global_samples_per_epoch,
                                     time.perf_counter() - eval_start))  # fmt: skip
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
        if not history:
            raise TochaError(f"{folder.path} has no finished epoch to score")
        # Still inside: a signal now only sets the flag, and the finished run writes its last files.
        final = score_test_once(s, keeper, len(history))
        folder.write_metrics(history, columns)  # from the checkpoint's history: the truth
        log(kept_line(s, keeper, history, final))
        title = f"{s.architecture.label} on {s.loaded.name}"
        kept = keeper.kept_epoch(len(history)) if keeper.monitor != NONE else 0
        draw = lambda: s.task.run_figures(history, final, s.data.classes, title, kept)  # noqa: E731
        figures = folder.write_figures(draw)
        summary = summarize(s, history, final, time.perf_counter() - started, keeper)
        folder.write_summary(summary)
        if tb:
            scores = {**{f"val_{k}": v for k, v in summary.val.items()},
                      **{f"test_{k}": v for k, v in summary.final_test.items()}}  # fmt: skip
            tb.finish(s.cfg, scores, figures, len(history) * s.data.steps_per_epoch)
    if stop_request.late and stop is None:  # nobody outside to hand it to: said, and the run ends well
        log(f"note: {stop_request.name} arrived after training, as the run wrote its last files: they are "
            "all written, the run is complete")  # fmt: skip
    return TrainResult(folder.path, history, final, s.loaded, s.cfg, s.task, s.model, s.architecture.given,
                       s.runtime.busy)  # fmt: skip


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


def continue_command(folder: RunFolder, world_size: int) -> str:
    """The command that resumes a stopped run: on as many processes as it trained on."""
    return f"tocha train --resume {folder.path}" + (f" --nproc {world_size}" if world_size > 1 else "")


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
    train_one_epoch(learner.forward_model, data.batches(tally, runtime.rank), s.task, learner.opt, tally,
                    stop=runtime.stop_policy(stop, tally), on_step=stepped(bar, on_step),
                    keep_eval=learner.keep_eval)  # fmt: skip
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


def summarize(s: Setup, history: list[dict[str, float]], final: Evaluation, seconds: float,
              keeper: Keeper) -> RunSummary:  # fmt: skip
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
    )
