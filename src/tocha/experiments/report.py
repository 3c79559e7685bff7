"""The report of `tocha compare`: the summary table (text, Markdown, CSV), the figures, report.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tocha.config import RunConfig
from tocha.errors import TochaError
from tocha.experiments.cells import CellResult
from tocha.experiments.stats import spread
from tocha.files import atomic_write, atomic_write_text
from tocha.tasks import Task


def columns(metric: str) -> list[str]:
    """summary.csv's header; `metric` is the task's primary test metric (accuracy, a regression's R²)."""
    return ["cell", "seeds", f"{metric}_mean", f"{metric}_std", "ci95_low", "ci95_high", "final_loss",
            "train_seconds", "samples_per_second", "parameters", "verdict"]  # fmt: skip


def summary_rows(
    results: list[CellResult], baselines: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One row per cell. The verdict ranks every row the table shows, scikit-learn baselines
    included (`mark_verdicts`). Seeds that diverged are counted in the verdict, not averaged in; a
    cell where every seed diverged has no score. With one seed there is no spread: its std and
    interval are NaN (shown as n/a), never a measured zero."""
    task = trained_cells(results)[0].task
    metric, (low_bound, high_bound) = task.primary, task.bounds  # the metric names the columns
    rows = []
    for r in results:
        n_seeds = len(r.runs) + len(r.diverged)
        note = f"diverged in {len(r.diverged)}/{n_seeds} seeds" if r.diverged else ""
        if not r.runs:  # no finished run: nothing to average
            numbers = dict.fromkeys(columns(metric)[2:-2], float("nan"))
            rows.append({"cell": r.label, "seeds": 0, **numbers, "parameters": 0, "verdict": note})
            continue
        acc, nan = r.score, float("nan")
        low, high = max(low_bound, acc.low), min(high_bound, acc.high)  # the t-interval within the possible
        learnt = task.failed_to_learn(acc.mean, r.runs[0].summary.classes)
        note = "; ".join(v for v in (note, learnt) if v)
        rows.append({
            "cell": r.label, "seeds": acc.n, f"{metric}_mean": acc.mean,
            f"{metric}_std": acc.std if acc.n > 1 else nan,
            "ci95_low": low if acc.n > 1 else nan, "ci95_high": high if acc.n > 1 else nan,
            "final_loss": spread(r.final("loss")).mean,
            "train_seconds": spread(r.train_seconds).mean,
            "samples_per_second": spread([run.history[-1]["samples_per_second"] for run in r.runs]).mean,
            "parameters": r.runs[0].summary.parameters,
            "verdict": note,
        })  # fmt: skip
    mark_verdicts(rows, baselines or [], metric)
    return rows


def trained_cells(results: list[CellResult]) -> list[CellResult]:
    """The cells with at least one finished run; an error when every run diverged."""
    trained = [r for r in results if r.runs]
    if not trained:
        raise TochaError("every run of the comparison diverged: try smaller learning rates")
    return trained


def baseline_score(row: dict[str, Any], metric: str) -> float:
    """A baseline's score: its record keeps every metric under its own name."""
    return row[metric]


def mark_verdicts(rows: list[dict[str, Any]], baselines: list[dict[str, Any]], metric: str) -> None:
    """ "best" on the top row of the whole table, tocha cell or baseline. "not distinguishable from
    best" only where an interval allows it: two cells whose 95% intervals overlap, or a cell whose
    interval holds the best baseline's score, or a baseline whose score lies in the best cell's
    interval (a baseline is fitted once and has no interval of its own)."""
    cells = [r for r in rows if r["seeds"] > 0]
    scored = [(r[f"{metric}_mean"], r) for r in cells] + [(baseline_score(b, metric), b) for b in baselines]
    top_score, top = max(scored, key=lambda pair: pair[0])

    def interval(row: dict[str, Any]) -> tuple[float, float] | None:
        low, high = row.get("ci95_low", float("nan")), row.get("ci95_high", float("nan"))
        return None if low != low else (low, high)  # NaN: one seed, or a baseline

    for score, row in scored:
        if row is top:
            verdict = "best"
        else:
            mine, theirs = interval(row), interval(top)
            close = (mine and theirs and mine[0] <= theirs[1] and theirs[0] <= mine[1]) or (
                mine and theirs is None and mine[0] <= top_score <= mine[1]) or (
                theirs and mine is None and theirs[0] <= score <= theirs[1])  # fmt: skip
            verdict = "not distinguishable from best" if close else ""
        row["verdict"] = "; ".join(v for v in (verdict, row.get("verdict", "")) if v)


def baseline_csv_row(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """A baseline in summary.csv's columns: one fit, so no spread; its fit time as training time."""
    nan = float("nan")
    return {**dict.fromkeys(columns(metric), nan), "cell": f"{row['name']} (scikit-learn)", "seeds": 1,
            f"{metric}_mean": baseline_score(row, metric), "train_seconds": row["fit_seconds"],
            "verdict": row.get("verdict", "")}  # fmt: skip


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_cells(row: dict[str, Any], task: Task) -> list[str]:
    """The human columns of a summary or baseline row, its score as the task shows it."""
    metric, (_, scale, places) = task.primary, task.score_column()
    if "ci95_low" in row and row["seeds"] == 0:  # every seed diverged
        return [row["cell"], "0", "diverged", "n/a", "", "", "", "", row["verdict"]]
    if "ci95_low" in row:
        mean, std = scale * row[f"{metric}_mean"], scale * row[f"{metric}_std"]
        one = row["seeds"] == 1  # no spread to show, and none measured
        acc = f"{mean:.{places}f} ± n/a (1 seed)" if one else f"{mean:.{places}f} ± {std:.{places}f}"
        interval = "n/a (1 seed)" if one else (
            f"[{scale * row['ci95_low']:.{places}f}, {scale * row['ci95_high']:.{places}f}]")  # fmt: skip
        return [row["cell"], str(row["seeds"]), acc, interval, f"{row['final_loss']:.4f}",
                f"{row['train_seconds']:.1f}", f"{row['samples_per_second']:,.0f}", f"{row['parameters']:,}",
                row["verdict"]]  # fmt: skip
    score = baseline_score(row, metric)
    notes = [row.get("verdict", ""), f"{row['train_samples']} train samples", *row.get("notes", [])]
    seconds = f"{row['fit_seconds']:.1f} fit + {row.get('predict_seconds', 0.0):.1f} predict"
    return [f"{row['name']} (scikit-learn)", "1 fit", f"{scale * score:.{places}f}", "n/a (one fit)", "",
            seconds, "", "", "; ".join(v for v in notes if v)]  # fmt: skip


HEADERS = [
    "cell",
    "seeds",
    "score",
    "95% interval",
    "final loss",
    "train s",
    "samples/s",
    "params",
    "verdict",
]


def headers(task: Task) -> list[str]:
    return ["cell", "seeds", task.score_column()[0], *HEADERS[3:]]


def markdown_table(rows: list[dict[str, Any]], task: Task) -> str:
    lines = ["| " + " | ".join(headers(task)) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(table_cells(r, task)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(rows: list[dict[str, Any]], task: Task) -> str:
    cells = [headers(task)] + [table_cells(r, task) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def write_report(results: list[CellResult], rows: list[dict[str, Any]], base: RunConfig, report_dir: Path,
                 baseline_rows: list[dict[str, Any]], seeds: list[int]) -> Path:  # fmt: skip
    """summary.csv, runs.csv, table.md, the figures and report.md tying them together."""
    from tocha.figures.plots import plot_overlay_curves, plot_score_vs_time

    task = trained_cells(results)[0].task
    metric = task.primary
    atomic_write_text(
        report_dir / "summary.csv", to_csv(rows + [baseline_csv_row(b, metric) for b in baseline_rows])
    )
    per_run = [
        {"cell": r.label, "seed": run.seed, "run_dir": str(run.run_dir.relative_to(report_dir)),
         **{f"test_{m}": v for m, v in run.summary.final_test.items()},
         "train_seconds": run.summary.train_seconds}
        for r in results for run in r.runs
    ]  # fmt: skip
    atomic_write_text(report_dir / "runs.csv", to_csv(per_run))
    table = markdown_table(rows + baseline_rows, task)
    atomic_write_text(report_dir / "table.md", table + "\n")
    title = f"{base.model.name} on {next(r for r in results if r.runs).runs[0].summary.dataset}"
    trained = [r for r in results if r.runs]  # a cell where every seed diverged has nothing to draw
    scale, label = task.curve_axis()
    curves = plot_overlay_curves({r.label: [run.history for run in r.runs] for r in trained}, title, metric,
                                 scale, label)  # fmt: skip
    atomic_write(report_dir / "curves.png", lambda f: f.write(curves))
    points = [(r.label, r.train_seconds, r.final(metric)) for r in trained]
    scores = plot_score_vs_time(points, metric, scale, label)
    atomic_write(report_dir / "accuracy_vs_time.png", lambda f: f.write(scores))
    text = report_markdown(results, table, report_dir, seeds, task)
    atomic_write_text(report_dir / "report.md", text)
    return report_dir / "report.md"


def report_markdown(results: list[CellResult], table: str, report_dir: Path, seeds: list[int],
                    task: Task) -> str:  # fmt: skip
    """report.md: how the comparison was made, the table, and links to the figures."""
    # The figure is of tocha's best cell (the table's best row may be a scikit-learn baseline).
    best = max(trained_cells(results), key=lambda r: r.score.mean)
    best_run = max(best.runs, key=lambda run: run.summary.final_test[task.primary])
    figure, caption = task.result_figure
    where = best_run.run_dir.relative_to(report_dir) / figure
    lines = [
        f"# Comparison: {', '.join(sorted({k for r in results for k in r.cell}))}",
        "",
        f"Base configuration: `{report_dir / 'comparison.yaml'}`. Each cell trained with seeds "
        f"{', '.join(str(seed) for seed in seeds)}; the score is the final test {task.primary}, "
        "mean ± sample standard deviation, with the t-based 95% interval of the mean (n/a with one "
        "seed; clipped to the possible range, 0-100% for accuracy, at most 1 for R²). A cell no better "
        "than guessing (a classifier at chance level, a regression with R² <= 0) is marked as having "
        "failed to learn. "
        "The verdict ranks every row, scikit-learn baselines included: `best` is the top row; "
        "`not distinguishable from best` where intervals allow it (two cells whose intervals overlap, a "
        "cell whose interval holds the best baseline's score, a baseline whose score lies in the best "
        "cell's interval; a baseline is fitted once and has no interval of its own).",
        "",
        table,
        "",
        "## Learning curves",
        "",
        f"![test {task.primary} and loss per epoch](curves.png)",
        "",
        f"## Test {task.primary} against training time",
        "",
        f"![{task.primary} against training time](accuracy_vs_time.png)",
        "",
    ]
    if figure:  # the task draws its results
        lines += [f"## {caption} of tocha's best cell ({best.label}, seed {best_run.seed})", "",
                  f"![{caption.lower()}]({where.as_posix()})", ""]  # fmt: skip
    lines += [
        "Every run's folder (config, metrics, checkpoint, plots) is under `runs/`.",
    ]
    return "\n".join(lines) + "\n"
