"""`tocha compare`: train a grid of configurations over several seeds and compare them with spread.

The grid is the product of every `--vary key=v1,v2`; each cell trains once per seed into
`REPORT/runs/<cell>-seed<k>/` (an ordinary run folder). A finished run (one with summary.json)
is never retrained, and one stopped by SIGTERM/Ctrl-C continues from its checkpoint, so
re-running the same command on the same folder resumes the comparison.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tocha.config import RunConfig, config_keys, copy_config, set_value, to_dict
from tocha.errors import DivergedError, Interrupted, TochaError
from tocha.files import atomic_write_text
from tocha.stats import Spread, spread

ALIASES = {"model": "model.name", "data": "data.name", "dataset": "data.name", "seed": "train.seed"}


def resolve_key(name: str) -> str:
    """`activation` -> `model.activation`, `batch-size` -> `train.batch_size`; dotted keys as given."""
    name = name.strip().replace("-", "_")
    if name in ALIASES:
        return ALIASES[name]
    if "." in name:
        return name
    matches = [key for key in config_keys() if key.endswith(f".{name}")]
    if len(matches) != 1:
        raise TochaError(f"--vary: unknown option {name!r} (use a config key such as train.lr or activation)")
    return matches[0]


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """`key=v1,v2` -> (config key, values). A YAML list (`key=[[128,64],[256]]`) gives list values."""
    if "=" not in text:
        raise TochaError(f"--vary {text!r}: expected KEY=VALUE1,VALUE2")
    name, raw = text.split("=", 1)
    if raw.strip().startswith("["):
        values = yaml.safe_load(raw)
    else:
        values = [_scalar(v) for v in raw.split(",") if v.strip()]
    if not isinstance(values, list) or not values:
        raise TochaError(f"--vary {text!r}: no values")
    return resolve_key(name), values


def _scalar(text: str) -> Any:
    """YAML's reading of one value, except that `1e-3` (YAML 1.1: a string) is a number."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def expand_grid(varies: list[str]) -> list[dict[str, Any]]:
    """The product of all `--vary` options, as a list of {config key: value} cells."""
    axes = [parse_vary(v) for v in varies]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise TochaError("--vary: the same option is varied twice")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(vals for _, vals in axes))]


def cell_label(cell: dict[str, Any]) -> str:
    """`activation=relu optimizer=sgd`, short keys, for tables and plots."""
    short = {"model.name": "model", "data.name": "data", "train.seed": "seed"}
    return " ".join(f"{short.get(k, k.split('.')[-1])}={v}" for k, v in cell.items()) or "base"


def cell_slug(cell: dict[str, Any]) -> str:
    """A folder-safe name for the cell."""
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", cell_label(cell).replace(" ", "__"))[:120]


def cell_config(base: RunConfig, cell: dict[str, Any]) -> RunConfig:
    """The base config with the cell's values. Options of the base that the cell's model does not
    take (hidden_sizes for tinyvgg, say) are dropped, so one base can describe every model of a
    `--vary model=...` grid; an inapplicable option the cell itself sets is still an error."""
    from tocha.models import model_options

    config = copy_config(base)
    for key, value in cell.items():
        set_value(config, key, value)
    accepted = set(model_options(config.model.name))
    for option in ("hidden_units", "hidden_sizes", "widths", "activation"):
        if option not in accepted and f"model.{option}" not in cell:
            setattr(config.model, option, None)
    return config


@dataclass
class RunRecord:
    seed: int
    run_dir: Path
    summary: dict[str, Any]
    history: list[dict[str, float]]


@dataclass
class CellResult:
    cell: dict[str, Any]
    runs: list[RunRecord] = field(default_factory=list)  # finished runs
    diverged: list[int] = field(default_factory=list)  # seeds whose loss became NaN/inf

    @property
    def label(self) -> str:
        return cell_label(self.cell)

    def metric(self, key: str) -> list[float]:
        return [float(r.summary[key]) for r in self.runs]

    @property
    def accuracy(self) -> Spread:
        return spread(self.metric("final_test_accuracy"))


def read_history(run_dir: Path) -> list[dict[str, float]]:
    with (run_dir / "metrics.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def finished(run_dir: Path) -> bool:
    """Trained to the end, or stopped because it diverged (which another try would repeat)."""
    done = (run_dir / "summary.json").is_file() and (run_dir / "metrics.csv").is_file()
    return done or (run_dir / DIVERGED).is_file()


DIVERGED = "diverged.json"


def run_grid(
    base: RunConfig,
    cells: list[dict[str, Any]],
    seeds: list[int],
    report_dir: Path,
    log: Callable[[str], None] = print,
    train_fn: Callable[..., Any] | None = None,
) -> list[CellResult]:
    """Train every cell for every seed (skipping finished runs) and collect their records."""
    from tocha.resume import resumable
    from tocha.train import resume

    if train_fn is None:
        from tocha.train import train as train_fn
    runs_dir = report_dir / "runs"
    total, done, spent = len(cells) * len(seeds), 0, 0.0
    results = []
    for cell in cells:
        result = CellResult(cell)
        for seed in seeds:
            run_dir = runs_dir / f"{cell_slug(cell)}-seed{seed}"
            if not finished(run_dir):
                started = time.perf_counter()
                try:
                    if resumable(run_dir):  # stopped by a signal: go on from its checkpoint
                        log(f"resuming {run_dir.name} from its checkpoint")
                        resume(run_dir, log=lambda _line: None, progress=False)
                    else:
                        if run_dir.exists():
                            shutil.rmtree(run_dir)  # died before its first checkpoint: start again
                        config = cell_config(base, cell)
                        config.train.seed = seed
                        config.out_dir, config.run_name = str(runs_dir), run_dir.name
                        train_fn(config, log=lambda _line: None, progress=False)
                except DivergedError as e:  # a result, not a crash: the grid goes on
                    info = {"epoch": e.epoch, "step": e.step, "message": str(e)}
                    atomic_write_text(run_dir / DIVERGED, json.dumps(info, indent=2) + "\n")
                except Interrupted as e:
                    raise Interrupted(
                        e.what,
                        e.signum,
                        "To finish the comparison, run the same tocha compare command again: "
                        "finished runs are kept, this one resumes.",
                    ) from e
                spent += time.perf_counter() - started
            done += 1
            if (run_dir / DIVERGED).is_file():
                info = json.loads((run_dir / DIVERGED).read_text())
                result.diverged.append(seed)
                log(f"[{done}/{total}] {cell_label(cell)} seed {seed}: diverged at epoch {info['epoch']}, "
                    f"step {info['step']}")  # fmt: skip
                continue
            summary = json.loads((run_dir / "summary.json").read_text())
            result.runs.append(RunRecord(seed, run_dir, summary, read_history(run_dir)))
            log(progress_line(done, total, cell, seed, summary, spent))
        results.append(result)
    return results


def progress_line(done: int, total: int, cell: dict[str, Any], seed: int, summary: dict, spent: float) -> str:
    eta = spent / max(1, done) * (total - done)
    return (
        f"[{done}/{total}] {cell_label(cell)} seed {seed}: test accuracy "
        f"{100 * summary['final_test_accuracy']:.2f}% in {summary['train_seconds']:.1f}s"
        f" · about {eta:.0f}s left"
    )


def save_base(base: RunConfig, cells: list[dict[str, Any]], seeds: list[int], report_dir: Path) -> None:
    """Record what the comparison is; refuse to resume a folder that holds a different one."""
    plan = {"base": to_dict(base), "cells": cells, "seeds": seeds}
    path = report_dir / "comparison.yaml"
    if path.exists():
        old = yaml.safe_load(path.read_text())
        if old.get("base") != plan["base"] or old.get("cells") != plan["cells"]:
            raise TochaError(
                f"{report_dir} holds a different comparison; choose another --out folder to start a new one"
            )
    atomic_write_text(path, yaml.safe_dump(plan, sort_keys=False))


COLUMNS = ["cell", "seeds", "accuracy_mean", "accuracy_std", "ci95_low", "ci95_high", "final_loss",
           "train_seconds", "samples_per_second", "parameters", "verdict"]  # fmt: skip


def summary_rows(results: list[CellResult]) -> list[dict[str, Any]]:
    """One row per cell; the best mean is marked and cells whose interval overlaps it say so.
    Seeds that diverged are counted in the verdict, not averaged in; a cell where every seed
    diverged has no accuracy."""
    trained = [r for r in results if r.runs]
    if not trained:
        raise TochaError("every run of the comparison diverged: try smaller learning rates")
    best = max(trained, key=lambda r: r.accuracy.mean)
    rows = []
    for r in results:
        n_seeds = len(r.runs) + len(r.diverged)
        note = f"diverged in {len(r.diverged)}/{n_seeds} seeds" if r.diverged else ""
        if not r.runs:
            numbers = dict.fromkeys(COLUMNS[2:-2], float("nan"))  # no finished run: nothing to average
            rows.append({"cell": r.label, "seeds": 0, **numbers, "parameters": 0, "verdict": note})
            continue
        acc = r.accuracy
        if r is best:
            verdict = "best"
        elif acc.n > 1 and best.accuracy.n > 1 and acc.overlaps(best.accuracy):
            verdict = "not distinguishable from best"
        else:
            verdict = ""
        rows.append({
            "cell": r.label, "seeds": acc.n, "accuracy_mean": acc.mean, "accuracy_std": acc.std,
            "ci95_low": acc.low, "ci95_high": acc.high,
            "final_loss": spread(r.metric("final_test_loss")).mean,
            "train_seconds": spread(r.metric("train_seconds")).mean,
            "samples_per_second": spread([run.history[-1]["samples_per_second"] for run in r.runs]).mean,
            "parameters": int(r.runs[0].summary["parameters"]),
            "verdict": "; ".join(v for v in (verdict, note) if v),
        })  # fmt: skip
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_cells(row: dict[str, Any]) -> list[str]:
    """The human columns of a summary or baseline row."""
    if "ci95_low" in row and row["seeds"] == 0:  # every seed diverged
        return [row["cell"], "0", "diverged", "n/a", "", "", "", "", row["verdict"]]
    if "ci95_low" in row:
        interval = (
            f"[{100 * row['ci95_low']:.2f}, {100 * row['ci95_high']:.2f}]" if row["seeds"] > 1 else "n/a"
        )
        acc = f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}"
        return [row["cell"], str(row["seeds"]), acc, interval, f"{row['final_loss']:.4f}",
                f"{row['train_seconds']:.1f}", f"{row['samples_per_second']:,.0f}", f"{row['parameters']:,}",
                row["verdict"]]  # fmt: skip
    return [f"{row['name']} (scikit-learn)", "1", f"{100 * row['accuracy']:.2f}", "n/a", "",
            f"{row['fit_seconds']:.1f} (fit)", "", "", f"{row['train_samples']} train images"]  # fmt: skip


HEADERS = ["cell", "seeds", "test acc % (mean ± std)", "95% interval", "final loss", "train s", "samples/s",
           "params", "verdict"]  # fmt: skip


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [HEADERS] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def write_report(results: list[CellResult], rows: list[dict[str, Any]], base: RunConfig, report_dir: Path,
                 baseline_rows: list[dict[str, Any]], seeds: list[int]) -> Path:  # fmt: skip
    """summary.csv, runs.csv, table.md, the figures and report.md tying them together."""
    from tocha.plots import plot_accuracy_vs_time, plot_overlay_curves

    atomic_write_text(report_dir / "summary.csv", to_csv(rows))
    per_run = [
        {"cell": r.label, "seed": run.seed, "run_dir": str(run.run_dir.relative_to(report_dir)),
         "test_accuracy": run.summary["final_test_accuracy"], "test_loss": run.summary["final_test_loss"],
         "train_seconds": run.summary["train_seconds"]}
        for r in results for run in r.runs
    ]  # fmt: skip
    atomic_write_text(report_dir / "runs.csv", to_csv(per_run))
    table = markdown_table(rows + baseline_rows)
    atomic_write_text(report_dir / "table.md", table + "\n")
    title = f"{base.model.name} on {next(r for r in results if r.runs).runs[0].summary['dataset']}"
    trained = [r for r in results if r.runs]  # a cell where every seed diverged has nothing to draw
    plot_overlay_curves(
        {r.label: [run.history for run in r.runs] for r in trained}, report_dir / "curves.png", title
    )
    points = [(r.label, r.metric("train_seconds"), r.metric("final_test_accuracy")) for r in trained]
    plot_accuracy_vs_time(points, report_dir / "accuracy_vs_time.png")
    best = next(r for r, row in zip(results, rows, strict=True) if row["verdict"].startswith("best"))
    best_run = max(best.runs, key=lambda run: run.summary["final_test_accuracy"])
    confusion = best_run.run_dir.relative_to(report_dir) / "confusion_matrix.png"
    lines = [
        f"# Comparison: {', '.join(sorted({k for r in results for k in r.cell}))}",
        "",
        f"Base configuration: `{report_dir / 'comparison.yaml'}`. Each cell trained with seeds "
        f"{', '.join(str(seed) for seed in seeds)}; accuracy is the final test accuracy, "
        "mean ± sample standard deviation, with the t-based 95% interval of the mean. Cells whose "
        "interval overlaps the best cell's are marked as not distinguishable from it.",
        "",
        table,
        "",
        "## Learning curves",
        "",
        "![test accuracy and loss per epoch](curves.png)",
        "",
        "## Accuracy against training time",
        "",
        "![accuracy against training time](accuracy_vs_time.png)",
        "",
        f"## Confusion matrix of the best cell ({best.label}, seed {best_run.seed})",
        "",
        f"![confusion matrix]({confusion.as_posix()})",
        "",
        "Every run's folder (config, metrics, checkpoint, plots) is under `runs/`.",
    ]
    atomic_write_text(report_dir / "report.md", "\n".join(lines) + "\n")
    return report_dir / "report.md"


@dataclass
class CompareResult:
    report_dir: Path
    results: list[CellResult]
    rows: list[dict[str, Any]]
    baseline_rows: list[dict[str, Any]]


def compare(
    base: RunConfig,
    varies: list[str],
    seeds: list[int],
    report_dir: Path,
    baselines: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> CompareResult:
    """Run (or resume) the comparison in `report_dir` and write its report."""
    from tocha.config import validate

    if not seeds:
        raise TochaError("--seeds must be at least 1")
    cells = expand_grid(varies)
    for cell in cells:  # every cell's config is checked before the first one trains
        validate(cell_config(base, cell))
    report_dir.mkdir(parents=True, exist_ok=True)
    save_base(base, cells, seeds, report_dir)
    log(
        f"comparing {len(cells)} cell(s) x {len(seeds)} seed(s) = {len(cells) * len(seeds)} runs "
        f"in {report_dir}"
    )
    results = run_grid(base, cells, seeds, report_dir, log)
    rows = summary_rows(results)
    baseline_rows = run_baseline_rows(base, baselines or [], seeds[0], report_dir, log)
    write_report(results, rows, base, report_dir, baseline_rows, seeds)
    return CompareResult(report_dir, results, rows, baseline_rows)


def run_baseline_rows(
    base: RunConfig, names: list[str], seed: int, report_dir: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """scikit-learn baselines on the same split as the runs; results kept for resuming."""
    if not names:
        return []
    from dataclasses import asdict

    from tocha.baselines import run_baseline
    from tocha.data.load import load_configured, resolve_name

    path = report_dir / "baselines.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    data = None
    for name in names:
        if name in stored:
            continue
        if data is None:  # the same dataset and split the runs used
            data = load_configured(base.data, resolve_name(base.data.name, base.data.data_dir), log=log)
        result = run_baseline(name, data, seed)
        stored[name] = {k: v for k, v in asdict(result).items() if k != "params"}
        atomic_write_text(path, json.dumps(stored, indent=2) + "\n")
        log(f"baseline {name}: test accuracy {100 * result.accuracy:.2f}% (fit {result.fit_seconds:.1f}s)")
    return [stored[name] for name in names]
