"""`tocha compare`: train a grid of configurations over several seeds and compare them with spread.

The grid is the product of every `--vary key=v1,v2` (see `grid`); each cell trains once per seed
into `REPORT/runs/<cell>-seed<k>/` (an ordinary run folder). A finished run (one with summary.json)
is never retrained, and one stopped by SIGTERM/Ctrl-C continues from its checkpoint, so re-running
the same command on the same folder resumes the comparison. Results are read back through
`RunFolder`; the table and figures are written by `report`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tocha.config import RunConfig, to_dict
from tocha.config_fields import MAX_CONFIG_BYTES, read_yaml, write_yaml
from tocha.data.code import is_data_code
from tocha.errors import TochaError
from tocha.experiments.cells import CellResult
from tocha.experiments.grid import cell_config, cell_slug, expand_grid
from tocha.experiments.grid_runs import run_grid
from tocha.experiments.report import detectable_line, summary_rows, trained_cells, write_report
from tocha.files import atomic_write_text, regular_file
from tocha.locks import hold
from tocha.models.code_trust import CodeTrust
from tocha.tasks import Task
from tocha.training.interrupt import StopRequest

Log = Callable[[str], None]


def save_base(base: RunConfig, cells: list[dict[str, Any]], seeds: list[int], report_dir: Path,
              *, nproc: int = 1) -> None:  # fmt: skip
    """Record what the comparison is (on how many processes each run trains included); refuse to
    resume a folder that holds a different one."""
    plan = {"base": to_dict(base), "cells": cells, "seeds": seeds, "nproc": nproc}
    path = report_dir / "comparison.yaml"
    if path.exists() or path.is_symlink():
        old = read_plan(path)
        if old.get("base") != plan["base"] or old.get("cells") != plan["cells"]:
            raise TochaError(
                f"{report_dir} holds a different comparison; choose another --out folder to start a new one"
            )
        if old.get("nproc", 1) != nproc:  # never one table of 1- and 2-process runs
            raise TochaError(f"{report_dir}: this comparison trains each run on {old.get('nproc', 1)} "
                             f"process(es); run it again with --nproc {old.get('nproc', 1)}")  # fmt: skip
    atomic_write_text(path, write_yaml(plan))


def read_plan(path: Path) -> dict[str, Any]:
    """comparison.yaml, read within bounds: a damaged one is named, never half-believed."""
    damaged = (f"{path} is damaged (not the record of a comparison); delete it to go on with this "
               "folder's finished runs, or choose another --out")  # fmt: skip
    regular_file(path, "comparison record")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise TochaError(damaged)
    try:
        old = read_yaml(path.read_text(), str(path))
    except (TochaError, UnicodeDecodeError):
        old = None
    if not isinstance(old, dict):
        raise TochaError(damaged)
    return old


@dataclass
class CompareResult:
    report_dir: Path
    results: list[CellResult]
    rows: list[dict[str, Any]]
    baseline_rows: list[dict[str, Any]]
    task: Task  # what the scores mean (`report.text_table(rows, task)`)
    detectable: str = ""  # what the seeds can tell apart (`report.detectable_line`)


def compare(base: RunConfig, varies: list[str], seeds: list[int], report_dir: Path,
            *, baselines: list[str] | None = None, log: Log = print, nproc: int = 1,
            given: dict[str, Any] | None = None, trust: CodeTrust = CodeTrust.RECORDED,
            data_trust: CodeTrust = CodeTrust.RECORDED) -> CompareResult:  # fmt: skip
    """Run (or resume) the comparison in `report_dir` and write its report. `given`: a model's name
    (`python:NAME`) -> a class or function given in Python, built afresh for each run, and a
    dataset's (`python:NAME`) -> the data given in Python (`data.given`); `trust`, `data_trust`: who
    chose a user's model's code and data's code (`models.code_trust`)."""
    return compare_cells(
        base,
        expand_grid(varies),
        seeds,
        report_dir,
        baselines=baselines,
        log=log,
        nproc=nproc,
        given=given,
        trust=trust,
        data_trust=data_trust,
    )


def compare_cells(base: RunConfig, cells: list[dict[str, Any]], seeds: list[int], report_dir: Path,
                  *, baselines: list[str] | None = None, log: Log = print, nproc: int = 1,
                  given: dict[str, Any] | None = None, trust: CodeTrust = CodeTrust.RECORDED,
                  data_trust: CodeTrust = CodeTrust.RECORDED) -> CompareResult:  # fmt: skip
    """`compare` of cells given as they are ({config key: value}; a search's best configurations)."""
    from tocha.training.plan import plan

    if not seeds:
        raise TochaError("--seeds must be at least 1")
    if given and nproc > 1:
        raise TochaError("a model or data given in Python trains in this process; compare it with nproc 1")
    if baselines and (base.data.name in (given or {}) or is_data_code(base.data.name)):
        raise TochaError("the baselines read their data by name; data given in Python: leave them out")
    planned, earlier = {}, None  # each cell planned once: its runs train the plan, each building it once
    for cell in cells:  # every cell's config is checked before the first one trains
        config = cell_config(base, cell)  # the checks `tocha train` makes before reading any data:
        earlier = plan(config, given=(given or {}).get(config.model.name), trust=trust, earlier=earlier,
                       data_trust=data_trust)  # fmt: skip
        planned[cell_slug(cell)] = earlier
    if baselines:  # a typo or a missing scikit-learn is said before the grid trains, not after
        from tocha.experiments.baselines import check_baselines

        check_baselines(baselines, base)
    report_dir.mkdir(parents=True, exist_ok=True)
    with hold(report_dir, "tocha compare"):  # one comparison at a time in a report folder
        return compare_locked(
            base,
            cells,
            seeds,
            report_dir,
            baselines=baselines,
            log=log,
            nproc=nproc,
            given=given,
            trust=trust,
            planned=planned,
            data_trust=data_trust,
        )


def shared_threads(base: RunConfig, nproc: int) -> int | None:
    """One CPU thread count for the whole grid, chosen once (as `tocha train` chooses, from the
    idle cores), so that no cell runs on fewer threads, and so other last digits, than another
    because the machine was busier when it started; None where the base sets it or runs elsewhere."""
    from tocha.devices import resolve_device
    from tocha.threads import choose_threads
    from tocha.training.runtime import TORCH_THREADS

    if base.train.threads or nproc > 1 or resolve_device(base.train.device).type != "cpu":
        return None
    return choose_threads(None, TORCH_THREADS)


def compare_locked(base: RunConfig, cells: list[dict[str, Any]], seeds: list[int], report_dir: Path,
                   *, baselines: list[str] | None, log: Log, nproc: int, given: dict[str, Any] | None = None,
                   trust: CodeTrust = CodeTrust.RECORDED, planned: dict[str, Any] | None = None,
                   data_trust: CodeTrust = CodeTrust.RECORDED) -> CompareResult:  # fmt: skip
    save_base(base, cells, seeds, report_dir, nproc=nproc)
    log(
        f"comparing {len(cells)} cell(s) x {len(seeds)} seed(s) = {len(cells) * len(seeds)} runs "
        f"in {report_dir}"
    )
    threads = shared_threads(base, nproc)
    if threads is not None:
        log(f"{threads} CPU thread{'s' * (threads != 1)} for every run, counted once from the idle cores "
            "(--threads N sets it)")  # fmt: skip
    with StopRequest() as stop:  # a signal between runs, or after one finished, stops the grid
        results = run_grid(base, cells, seeds, report_dir, log=log, nproc=nproc, stop=stop, given=given,
                           threads=threads, trust=trust, planned=planned, data_trust=data_trust)  # fmt: skip
    task = trained_cells(results)[0].task  # every run diverged: said before the baselines spend their time
    baseline_rows = run_baseline_rows(base, baselines or [], seeds[0], report_dir, log=log, task=task)
    rows = summary_rows(results, baseline_rows)  # the verdicts rank the baselines too
    write_report(results, rows, base, report_dir, baseline_rows=baseline_rows, seeds=seeds)
    return CompareResult(report_dir, results, rows, baseline_rows, task, detectable_line(rows, task))


def run_baseline_rows(base: RunConfig, names: list[str], seed: int, report_dir: Path, *, log: Log,
                      task: Task) -> list[dict[str, Any]]:  # fmt: skip
    """scikit-learn baselines on the same split as the runs, scored in `task`'s metrics; results
    kept for resuming (a kept one without the task's primary metric is fitted again)."""
    if not names:
        return []
    from dataclasses import asdict

    from tocha.data.load import load_configured, resolve_name
    from tocha.experiments.baselines import probes, run_baseline
    from tocha.training.recipe import with_recipe

    base = with_recipe(base)  # the image size a pretrained run reads its folder at
    path = report_dir / "baselines.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    data = None
    wanted = [task.primary, *([f"val_{task.primary}"] if base.data.val_fraction > 0 else [])]
    for name in names:
        if all(key in stored.get(name, {}) for key in wanted):  # kept: scored as this comparison scores
            continue
        if data is None:  # the same dataset and split the runs used
            data = load_configured(base.data, resolve_name(base.data.name, base.data.data_dir), log=log)
        result = run_baseline(name, data, seed, featurize=probes(name, base, data, log))
        # Every metric at the top too, under its own name (validation ones as val_<m>), where a row's
        # score is read (`report`).
        stored[name] = {**{k: v for k, v in asdict(result).items() if k != "params"}, **result.metrics,
                        **{f"val_{m}": v for m, v in result.val_metrics.items()}}  # fmt: skip
        atomic_write_text(path, json.dumps(stored, indent=2) + "\n")
        val = result.val_metrics.get(task.primary)
        chosen = f"validation {task.format(task.primary, val)}, " if val is not None else ""
        score = chosen + task.score_text(result.metrics[task.primary])
        times = f"fit {result.fit_seconds:.1f}s, predict {result.predict_seconds:.1f}s"
        log(f"baseline {name}: {score} ({times}{''.join(f'; {note}' for note in result.notes)})")
    return [stored[name] for name in names]
