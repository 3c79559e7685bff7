"""The report of `tocha compare`: the summary table (text, Markdown, CSV), the figures, report.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.analysis.stats import spread
from tocha.config import RunConfig
from tocha.errors import TochaError
from tocha.files import atomic_write_text

if TYPE_CHECKING:
    from tocha.analysis.compare import CellResult


def columns(metric: str = "accuracy") -> list[str]:
    """summary.csv's header; `metric` is the test accuracy, or a regression's R²."""
    return ["cell", "seeds", f"{metric}_mean", f"{metric}_std", "ci95_low", "ci95_high", "final_loss",
            "train_seconds", "samples_per_second", "parameters", "verdict"]  # fmt: skip


COLUMNS = columns()


def summary_rows(results: list[CellResult]) -> list[dict[str, Any]]:
    """One row per cell; the best mean is marked and cells whose interval overlaps it say so.
    Seeds that diverged are counted in the verdict, not averaged in; a cell where every seed
    diverged has no accuracy."""
    trained = [r for r in results if r.runs]
    if not trained:
        raise TochaError("every run of the comparison diverged: try smaller learning rates")
    best = max(trained, key=lambda r: r.score.mean)
    metric = best.metric  # accuracy, or a regression's r2: the columns are named after it
    rows = []
    for r in results:
        n_seeds = len(r.runs) + len(r.diverged)
        note = f"diverged in {len(r.diverged)}/{n_seeds} seeds" if r.diverged else ""
        if not r.runs:
            numbers = dict.fromkeys(
                columns(metric)[2:-2], float("nan")
            )  # no finished run: nothing to average
            rows.append({"cell": r.label, "seeds": 0, **numbers, "parameters": 0, "verdict": note})
            continue
        acc = r.score
        if r is best:
            verdict = "best"
        elif acc.n > 1 and best.score.n > 1 and acc.overlaps(best.score):
            verdict = "not distinguishable from best"
        else:
            verdict = ""
        rows.append({
            "cell": r.label, "seeds": acc.n, f"{metric}_mean": acc.mean, f"{metric}_std": acc.std,
            "ci95_low": acc.low, "ci95_high": acc.high,
            "final_loss": spread(r.final("loss")).mean,
            "train_seconds": spread(r.train_seconds).mean,
            "samples_per_second": spread([run.history[-1]["samples_per_second"] for run in r.runs]).mean,
            "parameters": r.runs[0].summary.parameters,
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
    """The human columns of a summary or baseline row (accuracy in %, R² as a fraction)."""
    pct = "accuracy_mean" in row or row.get("accuracy") is not None
    scale, places = (100, 2) if pct else (1, 4)
    if "ci95_low" in row and row["seeds"] == 0:  # every seed diverged
        return [row["cell"], "0", "diverged", "n/a", "", "", "", "", row["verdict"]]
    if "ci95_low" in row:
        metric = "accuracy" if pct else "r2"
        interval = (
            f"[{scale * row['ci95_low']:.{places}f}, {scale * row['ci95_high']:.{places}f}]"
            if row["seeds"] > 1
            else "n/a"
        )
        acc = f"{scale * row[f'{metric}_mean']:.{places}f} ± {scale * row[f'{metric}_std']:.{places}f}"
        return [row["cell"], str(row["seeds"]), acc, interval, f"{row['final_loss']:.4f}",
                f"{row['train_seconds']:.1f}", f"{row['samples_per_second']:,.0f}", f"{row['parameters']:,}",
                row["verdict"]]  # fmt: skip
    score = row["accuracy"] if pct else row["metrics"]["r2"]
    return [f"{row['name']} (scikit-learn)", "1", f"{scale * score:.{places}f}", "n/a", "",
            f"{row['fit_seconds']:.1f} (fit)", "", "", f"{row['train_samples']} train samples"]  # fmt: skip


HEADERS = ["cell", "seeds", "test acc % (mean ± std)", "95% interval", "final loss", "train s", "samples/s",
           "params", "verdict"]  # fmt: skip


def headers(rows: list[dict[str, Any]]) -> list[str]:
    regression = any("r2_mean" in r or r.get("metrics") for r in rows)
    return [
        "cell",
        "seeds",
        "test R² (mean ± std)" if regression else "test acc % (mean ± std)",
        *HEADERS[3:],
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(headers(rows)) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [headers(rows)] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def write_report(results: list[CellResult], rows: list[dict[str, Any]], base: RunConfig, report_dir: Path,
                 baseline_rows: list[dict[str, Any]], seeds: list[int]) -> Path:  # fmt: skip
    """summary.csv, runs.csv, table.md, the figures and report.md tying them together."""
    from tocha.analysis.plots import plot_accuracy_vs_time, plot_overlay_curves

    atomic_write_text(report_dir / "summary.csv", to_csv(rows))
    per_run = [
        {"cell": r.label, "seed": run.seed, "run_dir": str(run.run_dir.relative_to(report_dir)),
         **{f"test_{m}": v for m, v in run.summary.final_test.items()},
         "train_seconds": run.summary.train_seconds}
        for r in results for run in r.runs
    ]  # fmt: skip
    atomic_write_text(report_dir / "runs.csv", to_csv(per_run))
    table = markdown_table(rows + baseline_rows)
    atomic_write_text(report_dir / "table.md", table + "\n")
    title = f"{base.model.name} on {next(r for r in results if r.runs).runs[0].summary.dataset}"
    trained = [r for r in results if r.runs]  # a cell where every seed diverged has nothing to draw
    plot_overlay_curves(
        {r.label: [run.history for run in r.runs] for r in trained},
        report_dir / "curves.png",
        title,
        metric=trained[0].metric,
    )
    points = [(r.label, r.train_seconds, r.final(r.metric)) for r in trained]
    plot_accuracy_vs_time(points, report_dir / "accuracy_vs_time.png", metric=trained[0].metric)
    text = report_markdown(results, rows, table, report_dir, seeds)
    atomic_write_text(report_dir / "report.md", text)
    return report_dir / "report.md"


def report_markdown(results: list[CellResult], rows: list[dict[str, Any]], table: str, report_dir: Path,
                    seeds: list[int]) -> str:  # fmt: skip
    """report.md: how the comparison was made, the table, and links to the figures."""
    best = next(r for r, row in zip(results, rows, strict=True) if row["verdict"].startswith("best"))
    best_run = max(best.runs, key=lambda run: run.summary.final_test[best.metric])
    figure = "confusion_matrix.png" if best.metric == "accuracy" else "predictions.png"
    confusion = best_run.run_dir.relative_to(report_dir) / figure
    lines = [
        f"# Comparison: {', '.join(sorted({k for r in results for k in r.cell}))}",
        "",
        f"Base configuration: `{report_dir / 'comparison.yaml'}`. Each cell trained with seeds "
        f"{', '.join(str(seed) for seed in seeds)}; the score is the final test accuracy (regression: R²), "
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
        f"## {'Confusion matrix' if best.metric == 'accuracy' else 'Predictions'} of the best cell "
        f"({best.label}, seed {best_run.seed})",
        "",
        f"![{'confusion matrix' if best.metric == 'accuracy' else 'predictions'}]({confusion.as_posix()})",
        "",
        "Every run's folder (config, metrics, checkpoint, plots) is under `runs/`.",
    ]
    return "\n".join(lines) + "\n"
