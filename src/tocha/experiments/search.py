"""`tocha search`: hyperparameters beyond a grid, with Optuna (`pip install "tocha[search]"`).

Each trial is a `tocha train` run into `REPORT/trials/trial-NNNN`, with the values Optuna's sampler
draws (TPE, or random) for the `--space` dimensions; its objective is the validation split's
primary metric at the kept epoch (the test split plays no part in any choice). With `--prune
median`, each epoch's validation metric is reported to Optuna's `MedianPruner`, which ends a trial
that falls below the median of the others at the same epoch.

The study lives in SQLite inside the report folder (`study.db`), with the command that made it: the
same command run again goes on until the requested number of trials has finished (completed or
pruned). A trial a killed process left running is marked failed and never counted; a stopped one
(SIGTERM, Ctrl-C) is marked failed on the way out. Each trial's sampler is seeded from its number,
so a search that goes on draws new points, the ones a search run straight would have drawn. Another
command into the same folder is refused, and so is a `study.db` that is not a study tocha made
(empty, not SQLite, without Optuna's tables or tocha's study), with nothing in the folder changed.

`--confirm K` reruns the K best configurations over `--seeds` exactly as `tocha compare` does
(validation ranking, the test split side by side, Welch's t-test with Holm's correction, and any
`--baselines`), into `REPORT/confirm`: an answer with its spread, not one lucky seed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tocha.config import RunConfig, to_dict
from tocha.errors import Interrupted, TochaError
from tocha.experiments.grid import cell_config, cell_label
from tocha.experiments.space import Dimension, parse_spaces
from tocha.experiments.study_file import check_study_file
from tocha.files import atomic_write, atomic_write_text
from tocha.locks import hold
from tocha.models.code_trust import CodeTrust
from tocha.tasks import task_class

Log = Callable[[str], None]
STUDY, TRIALS, SAMPLERS, PRUNERS = "study.db", "trials", ("tpe", "random"), ("none", "median")
STUDY_NAME, SEED = "tocha", 0  # the study's name in study.db; the seed every trial's sampler derives from
FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class SearchResult:
    report_dir: Path
    best: dict[str, Any]  # the best trial's config values
    best_value: float
    finished: int
    confirm: Any = None  # the `CompareResult` of --confirm K


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise TochaError('tocha search needs Optuna: pip install "tocha[search]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # tocha says what happens, once
    return optuna


def search(base: RunConfig, spaces: list[str], trials: int, report_dir: Path, *, sampler: str = "tpe",
           prune: str = "none", confirm: int = 0, seeds: list[int] | None = None,
           baselines: list[str] | None = None, log: Log = print,
           trust: CodeTrust = CodeTrust.RECORDED,
           data_trust: CodeTrust = CodeTrust.RECORDED) -> SearchResult:  # fmt: skip
    """Run (or go on with) the search in `report_dir`; see the module. `trust`, `data_trust`: who
    chose a user's model's code and data's code (`models.code_trust`)."""
    from tocha.training.plan import plan

    dims = parse_spaces(spaces)
    if trials < 1:
        raise TochaError("--trials must be at least 1")
    if sampler not in SAMPLERS or prune not in PRUNERS:
        raise TochaError(f"--sampler is {' or '.join(SAMPLERS)}; --prune is {' or '.join(PRUNERS)}")
    if prune != "none" and base.data.val_fraction == 0:
        raise TochaError("--prune median stops trials on each epoch's validation metric: it needs a "
                         "validation split (a --val-fraction above 0)")  # fmt: skip
    if confirm < 0 or (confirm and not seeds):
        raise TochaError("--confirm K needs K >= 1 and --seeds N >= 1")
    optuna = optuna_module()
    example = {d.key: d.example() for d in dims}
    for d in dims:  # the checks train makes, on every choice, before any trial
        for value in d.values or (d.example(),):
            plan(cell_config(base, {**example, d.key: value}), trust=trust, data_trust=data_trust)
    command = {"base": to_dict(base), "space": spaces, "sampler": sampler, "prune": prune}
    report_dir.mkdir(parents=True, exist_ok=True)
    with hold(report_dir, "tocha search"):
        study = open_study(optuna, report_dir, command, sampler, prune=prune)
        best = run_trials(
            optuna,
            study,
            base,
            dims,
            trials=trials,
            report_dir=report_dir,
            sampler=sampler,
            log=log,
            trust=trust,
            data_trust=data_trust,
        )
        write_search_report(
            study, dims, report_dir, study.user_attrs.get("metric", "metric").removeprefix("val_")
        )
    result = SearchResult(report_dir, best.params, best.value, finished_count(study))
    if confirm:
        from tocha.experiments.compare import compare_cells

        cells = best_cells(study, dims, confirm)
        log(
            f"confirming the {len(cells)} best configuration(s) over {len(seeds or [])} seed(s), as "
            "compare does"
        )
        result.confirm = compare_cells(
            base,
            cells,
            seeds or [0],
            report_dir / "confirm",
            baselines=baselines,
            log=log,
            trust=trust,
            data_trust=data_trust,
        )
    return result


def open_study(optuna: Any, report_dir: Path, command: dict[str, Any], sampler: str, *, prune: str) -> Any:
    """The folder's study: made, or loaded when it is this command's; another's is refused, and so
    is a damaged `study.db` (before Optuna, which would start a new study in it, opens it)."""
    storage = f"sqlite:///{report_dir / STUDY}"
    fresh = not (report_dir / STUDY).exists()
    if fresh and any(p.name != ".lock" for p in report_dir.iterdir()):
        raise TochaError(f"{report_dir} is not empty and holds no search; search into an empty folder")
    if not fresh:
        check_study_file(report_dir / STUDY, STUDY_NAME)
    median = lambda: optuna.pruners.MedianPruner(n_warmup_steps=1)  # noqa: E731 (from the second epoch on)
    pruners = {"median": median, "none": optuna.pruners.NopPruner}
    try:
        study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize",
                                    load_if_exists=True, sampler=trial_sampler(optuna, sampler, 0),
                                    pruner=pruners[prune]())  # fmt: skip
    except Exception as e:  # not a database Optuna can read
        raise TochaError(f"{report_dir / STUDY}: not a search's study ({type(e).__name__})") from None
    recorded = study.user_attrs.get("command")
    if recorded is None:
        study.set_user_attr("command", json.loads(json.dumps(command, default=str)))
    elif recorded != json.loads(json.dumps(command, default=str)):
        raise TochaError(f"{report_dir} holds a search made by another command (its options, space, sampler "
                         "or pruner differ); give the same command to go on, or search into another "
                         "folder")  # fmt: skip
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # a killed process's: never counted
    return study


def trial_sampler(optuna: Any, sampler: str, number: int) -> Any:
    """The sampler that draws trial `number`, seeded from (SEED, number): trial n draws the same
    point whether the search ran straight or was stopped and run again before it, and a search
    that goes on draws new points (one sampler seeded once per start drew its first points again)."""
    import numpy as np

    seed = int(np.random.SeedSequence([SEED, number]).generate_state(1)[0])
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    return samplers[sampler](seed=seed)


def finished_count(study: Any) -> int:
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))


def run_trials(
    optuna: Any,
    study: Any,
    base: RunConfig,
    dims: list[Dimension],
    *,
    trials: int,
    report_dir: Path,
    sampler: str,
    log: Log,
    trust: CodeTrust = CodeTrust.RECORDED,
    data_trust: CodeTrust = CodeTrust.RECORDED,
) -> Any:
    """Trials until `trials` have finished; the best one."""
    from tocha.errors import DivergedError
    from tocha.runs import RunFolder
    from tocha.training import train
    from tocha.training.interrupt import StopRequest

    done = finished_count(study)
    if done:
        log(f"going on with the search in {report_dir}: {done} of {trials} trials finished")
    with StopRequest() as stop:
        while (done := finished_count(study)) < trials:
            number = len(study.get_trials(deepcopy=False))  # the number the next trial is given
            study.sampler = trial_sampler(optuna, sampler, number)
            trial = study.ask()
            cell = {d.key: d.suggest(trial) for d in dims}
            config = cell_config(base, cell)
            config.out_dir, config.run_name = str(report_dir / TRIALS), f"trial-{trial.number:04d}"

            def observe(row: dict[str, float], monitor: str, higher: bool, trial: Any = trial) -> None:
                trial.report(row[monitor] if higher else -row[monitor], int(row["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned()

            started = time.perf_counter()
            try:
                quiet = {"log": lambda _line: None, "progress": False}
                run = train(
                    config,
                    **quiet,
                    stop=stop,
                    observe=observe,
                    trust=trust,  # type: ignore[arg-type]
                    data_trust=data_trust,
                ).run_dir
                summary = RunFolder(run).read_summary()
                metric = summary.selection.removeprefix("val_")
                value, higher = summary.val[metric], metric not in task_class(summary.task).lower_is_better
                study.set_user_attr("metric", summary.selection)
                study.set_user_attr("higher", higher)  # Optuna keeps the value negated where lower is better
                study.set_user_attr("task", summary.task)
                study.tell(trial, value if higher else -value)  # Optuna maximises
                said = f"{summary.selection} {task_class(summary.task)().format(metric, value)}"  # as compare
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                said = "pruned"
            except DivergedError:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                said = "diverged (not counted)"
            except Interrupted:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise Interrupted(f"search stopped during trial {trial.number}; its {done} finished trials "
                                  f"are kept in {report_dir / STUDY}", stop.signum or 15,
                                  "Continue with: the same tocha search command") from None  # fmt: skip
            log(f"trial {trial.number} ({finished_count(study)}/{trials}) {shown_cell(cell)}: {said} · "
                f"{time.perf_counter() - started:.1f}s")  # fmt: skip
    best = study.best_trial
    metric = str(study.user_attrs.get("metric", "val_score"))
    value = best.value if study.user_attrs.get("higher", True) else -best.value  # Optuna's is negated there
    task = task_class(str(study.user_attrs.get("task", "classification")))()
    log(f"best: trial {best.number}, {shown_cell(best_cell(best, dims))}: {metric} "
        f"{task.format(metric.removeprefix('val_'), value)}")  # fmt: skip
    return best


def shown_cell(cell: dict[str, Any]) -> str:
    """A trial's values as a line shows them: a drawn number to 4 significant digits (0.001234, not
    0.0012340567891234567); the study keeps every digit."""
    return cell_label({k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in cell.items()})


def best_cell(trial: Any, dims: list[Dimension]) -> dict[str, Any]:
    return {d.key: d.value_of(trial.params[d.key]) for d in dims}


def best_cells(study: Any, dims: list[Dimension], k: int) -> list[dict[str, Any]]:
    """The `k` best completed trials' configurations, each once."""
    ranked = sorted((t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"),
                    key=lambda t: t.value, reverse=True)  # fmt: skip
    cells: list[dict[str, Any]] = []
    for trial in ranked:
        cell = best_cell(trial, dims)
        if cell not in cells:
            cells.append(cell)
        if len(cells) == k:
            break
    return cells


def write_search_report(study: Any, dims: list[Dimension], report_dir: Path, primary: str) -> None:
    """search.csv (every trial), and the figures: history, parameters, importances."""
    import csv
    import io

    from tocha.figures.search import plot_history, plot_importances, plot_parameters

    rows, sign = [], 1 if study.user_attrs.get("higher", True) else -1
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.value is not None else max(t.intermediate_values.values(), default=None)
        value = None if value is None else sign * value  # the metric as the run reports it
        rows.append({"trial": t.number, "state": t.state.name, "value": value,
                     "seconds": t.duration.total_seconds() if t.duration else None,
                     **{d.key: t.params.get(d.key) for d in dims}})  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["trial", "state", "value", "seconds", *(d.key for d in dims)],
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(report_dir / "search.csv", buffer.getvalue())
    finished = [r for r in rows if r["state"] in FINISHED and r["value"] is not None]
    history = [(r["trial"], r["value"], r["state"]) for r in finished]
    figures = {"history.png": plot_history(history, primary, higher=sign > 0)}
    figures["parameters.png"] = plot_parameters(
        [{"params": {d.key: r[d.key] for d in dims}, "value": r["value"]} for r in finished],
        [d.key for d in dims], {d.key for d in dims if d.kind == "log"}, primary)  # fmt: skip
    completed = [r for r in rows if r["state"] == "COMPLETE"]
    if len(completed) >= 2 and len({json.dumps([r[d.key] for d in dims]) for r in completed}) >= 2:
        import optuna

        figures["importances.png"] = plot_importances(optuna.importance.get_param_importances(study))
    for name, data in figures.items():
        atomic_write(report_dir / name, lambda f, data=data: f.write(data))
