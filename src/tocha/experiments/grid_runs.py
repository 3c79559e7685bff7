"""A comparison's runs: every cell trained for every seed, each into its own run folder (a finished
run read back, never retrained; a stopped one resumed from its checkpoint; a diverged one recorded
as such), with one line per run and the time left (`tocha compare`, `experiments.compare`)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tocha.config import RunConfig, to_yaml
from tocha.errors import DivergedError, Interrupted
from tocha.experiments.cells import CellResult, RunRecord, summary_task
from tocha.experiments.grid import cell_config, cell_label, cell_slug
from tocha.files import atomic_write_text
from tocha.models.code_trust import CodeTrust
from tocha.runs import RunFolder, RunSummary
from tocha.training.interrupt import StopRequest

Log = Callable[[str], None]


def run_grid(base: RunConfig, cells: list[dict[str, Any]], seeds: list[int], report_dir: Path,
             *, log: Log = print, train_fn: Callable[..., Any] | None = None, nproc: int = 1,
             stop: StopRequest | None = None, given: dict[str, Any] | None = None,
             threads: int | None = None, trust: CodeTrust = CodeTrust.RECORDED,
             planned: dict[str, Any] | None = None,
             data_trust: CodeTrust = CodeTrust.RECORDED) -> list[CellResult]:  # fmt: skip
    """Train every cell for every seed (skipping finished runs) and collect their records; `stop`:
    a signal that arrived between two runs (or as a finished run wrote its last files) stops here.
    `given`: a model's or dataset's name -> what was given in Python under it; `threads`: the
    CPU threads of every run that does not set its own; `trust`, `data_trust`: who chose a user's
    model's code and data's code;
    `planned`: each cell's plan (by the cell's folder name), which its runs train as they are."""
    runs_dir = report_dir / "runs"
    total, done = len(cells) * len(seeds), 0
    times: dict[str, list[float]] = {}  # measured seconds of the runs trained now, per cell
    results = []
    for cell in cells:
        result = CellResult(cell)
        for seed in seeds:
            folder = RunFolder(runs_dir / f"{cell_slug(cell)}-seed{seed}")
            reused = folder.is_finished()  # by an earlier run of the same command
            if not reused:
                started = time.perf_counter()
                train_seed(
                    base,
                    cell,
                    seed,
                    folder,
                    log=log,
                    train_fn=train_fn,
                    nproc=nproc,
                    given=given,
                    threads=threads,
                    trust=trust,
                    planned=(planned or {}).get(cell_slug(cell)),
                    data_trust=data_trust,
                )
                times.setdefault(cell_label(cell), []).append(time.perf_counter() - started)
            if stop:  # finished runs are kept: the same command goes on from here
                stop.acted = True
                raise Interrupted(f"stopped by {stop.name} after {folder.path.name}", stop.signum or 15,
                                  "To finish the comparison, run the same tocha compare command again: "
                                  "finished runs are kept.")  # fmt: skip
            done += 1
            if (info := folder.read_diverged()) is not None:
                result.diverged.append(seed)
                log(f"[{done}/{total}] {cell_label(cell)} seed {seed}: diverged at epoch {info['epoch']}, "
                    f"step {info['step']}")  # fmt: skip
                continue
            summary = folder.read_summary()
            result.runs.append(RunRecord(seed, folder.path, summary, folder.read_metrics()))
            if reused:  # its recorded time still says what the cell's runs take
                times.setdefault(cell_label(cell), []).append(summary.wall_seconds)
            log(
                progress_line(
                    done,
                    total,
                    cell,
                    seed,
                    summary=summary,
                    left=eta(cells, seeds, done, times),
                    reused=reused,
                )
            )
        results.append(result)
    return results


def train_seed(base: RunConfig, cell: dict[str, Any], seed: int, folder: RunFolder, *, log: Log,
               train_fn: Callable[..., Any] | None, nproc: int = 1,
               given: dict[str, Any] | None = None, threads: int | None = None,
               trust: CodeTrust = CodeTrust.RECORDED, planned: Any = None,
               data_trust: CodeTrust = CodeTrust.RECORDED) -> None:  # fmt: skip
    """Train (or resume) one cell with one seed into `folder`, in this process or, with `nproc` > 1,
    as `tocha train --nproc N` (told `--trust-code` where the code was chosen here: the plan it reads
    is this process's); a diverged run is recorded as such. `planned`: the cell's plan, trained with
    this seed and folder without planning it again."""
    from tocha.training import resume, train
    from tocha.training.launch import run_on
    from tocha.training.resume import resumable

    quiet: Log = lambda _line: None  # noqa: E731 - the grid prints one line per run instead
    chosen = trust is not CodeTrust.RECORDED or data_trust is not CodeTrust.RECORDED
    trusting = ["--trust-code"] if chosen else []
    config = cell_config(base, cell)
    model = (given or {}).get(config.model.name)  # None: a name tocha builds by itself
    data = (given or {}).get(config.data.name)  # None: a dataset tocha reads by its name
    try:
        if resumable(folder.path, nproc):  # stopped by a signal: go on from its checkpoint
            log(f"resuming {folder.path.name} from its checkpoint")
            if nproc > 1:
                run_on(nproc, ["--resume", str(folder.path), *trusting])
            else:
                resume(folder.path, log=quiet, progress=False, given=model, trust_code=chosen, data=data)
            return
        if folder.path.exists():
            shutil.rmtree(folder.path)  # died before its first checkpoint: start again
        config.train.seed = seed
        config.train.threads = config.train.threads or threads  # cells differ only by what they vary
        config.out_dir, config.run_name = str(folder.path.parent), folder.path.name
        if nproc > 1:
            plan = folder.path.parent / f".{folder.path.name}.yaml"
            atomic_write_text(plan, to_yaml(config))
            run_on(nproc, ["--config", str(plan), *trusting])
            plan.unlink()
        elif model is not None:
            train(config, log=quiet, progress=False, given=model, data=data, data_trust=data_trust)
        elif planned is not None and train_fn is None:
            run = planned.with_run(**{"train.seed": seed, "train.threads": config.train.threads,
                                      "out_dir": config.out_dir, "run_name": config.run_name})  # fmt: skip
            train(run, log=quiet, progress=False, trust=trust, data=data)
        else:
            given_data = {"data": data} if data is not None else {}
            (train_fn or train)(config, log=quiet, progress=False, trust=trust, data_trust=data_trust,
                                **given_data)  # fmt: skip
    except DivergedError as e:  # a result, not a crash: the grid goes on
        folder.write_diverged(e.epoch, e.step, str(e))
    except Interrupted as e:
        raise Interrupted(
            e.what,
            e.signum,
            "To finish the comparison, run the same tocha compare command again: "
            "finished runs are kept, this one resumes.",
        ) from e


def eta(
    cells: list[dict[str, Any]], seeds: list[int], done: int, times: dict[str, list[float]]
) -> float | None:
    """Seconds the runs after the first `done` will take: each at its own cell's measured mean, or
    at the mean of every run measured so far (reused runs count with their recorded time); None
    before any run was timed."""
    measured = [t for ts in times.values() for t in ts]
    if not measured:
        return None
    overall = sum(measured) / len(measured)
    remaining = [cell_label(cell) for cell in cells for _ in seeds][done:]
    return sum(sum(times[c]) / len(times[c]) if c in times else overall for c in remaining)


def progress_line(done: int, total: int, cell: dict[str, Any], seed: int, *, summary: RunSummary,
                  left: float | None, reused: bool = False) -> str:  # fmt: skip
    """One finished run: its scores, its time (or that it was reused, trained by an earlier run of
    the command) and the time left."""
    task = summary_task(summary)
    estimate = (
        ""
        if done == total
        else " · time left not known yet"
        if left is None
        else f" · about {left:.0f}s left"
    )
    val = summary.val.get(task.primary)
    chosen = (
        f"validation {task.format(task.primary, val)} (epoch {summary.kept_epoch}), "
        if val is not None
        else ""
    )
    return (
        f"[{done}/{total}] {cell_label(cell)} seed {seed}: {chosen}"
        f"{task.score_text(summary.final_test[task.primary])} "
        f"{'reused (trained earlier)' if reused else f'in {summary.train_seconds:.1f}s'}{estimate}"
    )
