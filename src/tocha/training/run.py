"""`tocha train` and `tocha train --resume`: a run's life around `fit` (`training.fit`, the epoch
driver). `train` builds the setup, makes the run folder and fits from nothing; `resume` opens a
stopped run's folder, builds the same setup, restores its state and fits from there; `fast_dev_run`
runs every part once and writes nothing. With several processes each rank runs this, and the
runtime (`training.runtime`) joins and leaves their group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import RunConfig
from tocha.formats import EXPORTS, FORMATS
from tocha.models.code_trust import CodeTrust
from tocha.models.user import recorded_source
from tocha.runs import RunFolder
from tocha.training.console import resuming_line, setup_line
from tocha.training.fit import Log, Observer, RunState, TrainResult, evaluate_split, fit
from tocha.training.interrupt import StopRequest
from tocha.training.loop import train_one_epoch
from tocha.training.pieces import Pieces, given_line
from tocha.training.plan import Planned
from tocha.training.recipe import recipe_line
from tocha.training.resume import open_resumable
from tocha.training.runtime import Runtime
from tocha.training.setup import Setup, build_setup


def train(config: RunConfig | Planned, log: Log = print, progress: bool | None = None,
          stop: StopRequest | None = None, *, given: Any = None, observe: Observer | None = None,
          trust: CodeTrust = CodeTrust.RECORDED, data: Any = None,
          data_trust: CodeTrust = CodeTrust.RECORDED,
          pieces: Pieces | None = None) -> TrainResult:  # fmt: skip
    """Train as `config` says; returns the run folder, the history and the final test evaluation.
    Started by torchrun, this is one rank of a run on several processes. `given`: the model as an
    `nn.Module` (trained as it is) or a function returning one, from Python. `observe`: called with
    each epoch's row once it is saved, the validation metric choices are made on and whether higher
    is better (a search's pruner: it may raise to end the run there). `trust`: who chose a user's
    model's code (`models.code_trust`: named on this command, `--trust-code`, or a record signed here).
    A `Planned` config (a comparison's run) is trained as planned: it is not planned again. `data`:
    data given in Python (`data.given`: a Dataset, tensors, their splits), named `python:...` in
    the config; `data_trust`: who chose your data's code where the config names it (`data.code`);
    `pieces`: a loss and an optimizer factory given in Python (`training.pieces`)."""
    runtime = Runtime.of_this_process()
    log = runtime.log(log)  # the other ranks print nothing but errors
    s, finished = None, False
    try:
        s = build_setup(config, log, runtime, given=given, trust=trust, data=data, data_trust=data_trust,
                        pieces=pieces)  # fmt: skip
        if s.cfg.train.fast_dev_run:  # before any folder: nothing is written
            finished = True
            return fast_dev_run(s, log)
        asked = s.cfg.run_name or RunFolder.default_name(s.cfg.data.name, s.cfg.model.name)
        folder = runtime.new_folder(s.cfg.out_dir, asked)
        with folder.writing("training"):  # a `--resume` of this run while it trains is refused
            if folder.path.name != asked:  # never over another run: said, with the ways to what was meant
                taken = Path(s.cfg.out_dir) / asked
                log(f"note: {taken} exists (another run), so this one is {folder.path}; --resume {taken} "
                    "goes on with that run, --name another name")  # fmt: skip
            folder.write_config(s.cfg)
            if s.architecture.own:
                folder.write_model_record(recorded_source(s.cfg.model), repr(s.model))
            log(setup_line(s.cfg, s.learner.n_params, s.data, s.device, run_dir=folder.path))
            for line in (given_line(s.cfg), recipe_line(s.cfg, s.loaded.image_shape[0])):
                if line is not None:
                    log(line)
            if isinstance(s.architecture.given, nn.Module):  # its weights are the object's: said and recorded
                log(f"note: model= is a module built already: it trains from its own initial weights, drawn "
                    f"when it was built, not from the run's seed {s.cfg.train.seed} (which sets the batch "
                    "order); give its class (model=Net, model_args=...) for a run that repeats")  # fmt: skip
            result = fit(s, folder, RunState(), log, progress=progress, stop=stop, observe=observe)
        finished = True
        return dataclasses.replace(result, pieces=pieces)
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
    train_one_epoch(s.learner.forward_model, first, s.task, s.learner.opt, tally=tally,
                    keep_eval=s.learner.keep_eval)  # fmt: skip
    s.runtime.finish_epoch(tally)
    loss = tally.metrics(min(s.data.batch_size, len(s.data.train_set)))["loss"]
    said = [f"1 training step (loss {loss:.4f})"]
    final = None
    for name, split in (("validation", s.data.val_set), ("test", s.data.test_set)):
        if split is None:
            continue
        index = torch.arange(min(s.cfg.train.eval_batch_size, len(split)), device=split.labels.device)
        final = evaluate_split(s, split.take(index))
        said.append(f"1 {name} batch ({s.task.headline(final)})")
    log(f"fast dev run: {', '.join(said)}: every part ran; nothing was written")
    return TrainResult(None, [], final, s.loaded, s.cfg, s.task, s.model)  # type: ignore[arg-type]


def stale_exports(run_dir: Path) -> list[Path]:
    """The exports `tocha export` wrote into the run folder (model.onnx, .pt2...): a resumed run
    goes on past the weights they hold."""
    suffixes = {FORMATS[name].suffix for name in EXPORTS}
    return sorted(p for p in run_dir.glob("model.*") if p.suffix in suffixes)


def resume(run: str | Path, overrides: dict[str, Any] | None = None, log: Log = print,
           progress: bool | None = None, *, stop: StopRequest | None = None, given: Any = None,
           trust_code: bool = False, data: Any = None,
           pieces: Pieces | None = None) -> TrainResult:  # fmt: skip
    """Continue a stopped run in its own folder, exactly where it stopped (`tocha train --resume`).

    `overrides` are config values given again on the command line: each must match the run's,
    except `train.epochs`, which may extend a run with a constant learning rate, and `model.file`
    (the user's model's code, trusted because it is named; its weights are checked). `given`: the
    model given in Python again, for a run trained from a Python object. `trust_code`: run the model
    code the run records though it was not recorded on this machine (`models.code_trust`). `data`:
    the data given in Python again, for a run trained on it (its fingerprint is checked). `pieces`:
    the loss and optimizer factory given in Python again (held to what the run records).
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
                            source_copy=folder.file(folder.MODEL_SOURCE), trust=trust, data=data,
                            data_trust=resumed_trust(overrides or {}, trust_code, "data"),
                            pieces=pieces)  # fmt: skip
            state = RunState.resumed(s, ckpt, str(folder.path))
            stopped = state.stopped
            for stale in folder.remove_stale_temp_files():
                log(f"removed {stale.name}: an unfinished write from an earlier process")
            folder.write_config(s.cfg)  # the same, or with more epochs
            if trust is CodeTrust.NAMED:  # --model-file: its copy is what a later change is told against
                folder.write_model_record(recorded_source(s.cfg.model), repr(s.model))
            log(setup_line(s.cfg, s.learner.n_params, s.data, s.device, run_dir=folder.path))
            if ckpt.epoch >= s.cfg.train.epochs and stopped is None:
                log("its training was finished; writing the summary and figures it did not get to write")
            else:
                log(resuming_line(ckpt.epoch + 1, s.cfg.train.epochs, stopped.steps_done if stopped else 0))
            for export in stale_exports(folder.path):
                log(f"note: {export.name} holds the weights of before this resume; once it is done, tocha "
                    f"export {folder.path} --format {export.suffix[1:]} --force replaces it")  # fmt: skip
            result = fit(s, folder, state, log, progress=progress, stop=stop)
            finished = True
            return dataclasses.replace(result, pieces=pieces)
        except RuntimeError as e:
            raise (runtime.failed(e) or e) from None
        finally:
            runtime.leave(finished, lambda: drop_wrapper(s))


def resumed_trust(overrides: dict[str, Any], trust_code: bool, section: str = "model") -> CodeTrust:
    """Who chose a resumed run's model code (or its data's: `section`): `--model-file` names it;
    `--trust-code` trusts the record; else the record must be signed here."""
    if overrides.get(f"{section}.file"):
        return CodeTrust.NAMED
    return CodeTrust.TRUSTED if trust_code else CodeTrust.RECORDED


def drop_wrapper(s: Setup | None) -> None:
    """The loop's DDP wrapper let go of before the process group is left (see `distributed.stop`)."""
    if s is not None:
        s.learner.forward_model = s.model
