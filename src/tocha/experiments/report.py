"""The report of `tocha compare`: the summary table (text, Markdown, CSV), the figures, report.md."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from tocha.config import RunConfig
from tocha.errors import TochaError
from tocha.experiments.cells import CellResult
from tocha.experiments.stats import holm, spread, t_critical, welch_p
from tocha.files import atomic_write, atomic_write_text
from tocha.tasks import Task


def columns(metric: str) -> list[str]:
    """summary.csv's header; `metric` is the task's primary metric (accuracy, a regression's R²):
    the validation scores a cell is chosen on, then the test scores it is reported with."""
    return ["cell", "seeds", f"val_{metric}_mean", f"val_{metric}_std", f"{metric}_mean", f"{metric}_std",
            "ci95_low", "ci95_high", "p_value", "final_loss", "train_seconds", "samples_per_second",
            "parameters", "chosen_on", "verdict"]  # fmt: skip


def summary_rows(
    results: list[CellResult], baselines: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One row per cell: its validation score (what it is ranked on; test for runs without a
    validation split), its test score with spread, and the verdict. The verdict ranks every row
    the table shows, scikit-learn baselines included (`mark_verdicts`). Seeds that diverged are
    counted in the verdict, not averaged in; a cell where every seed diverged has no score. With one
    seed there is no spread: its std, interval and p-value are NaN (shown as n/a), never a zero."""
    task = trained_cells(results)[0].task
    metric, (low_bound, high_bound) = task.primary, task.bounds  # the metric names the columns
    rows = []
    for r in results:
        n_seeds = len(r.runs) + len(r.diverged)
        note = f"diverged in {len(r.diverged)}/{n_seeds} seeds" if r.diverged else ""
        if not r.runs:  # no finished run: nothing to average
            numbers = dict.fromkeys(columns(metric)[2:-3], float("nan"))
            rows.append({"cell": r.label, "seeds": 0, **numbers, "parameters": 0, "chosen_on": "",
                         "verdict": note})  # fmt: skip
            continue
        test, chosen, nan = r.score, spread(r.chosen_on(metric)), float("nan")
        low, high = max(low_bound, test.low), min(high_bound, test.high)  # the t-interval within the possible
        learnt = task.failed_to_learn(test.mean, r.runs[0].summary.classes)
        note = "; ".join(v for v in (note, learnt) if v)
        rows.append({
            "cell": r.label, "seeds": test.n,
            f"val_{metric}_mean": chosen.mean if r.validated else nan,
            f"val_{metric}_std": chosen.std if r.validated and chosen.n > 1 else nan,
            f"{metric}_mean": test.mean, f"{metric}_std": test.std if test.n > 1 else nan,
            "ci95_low": low if test.n > 1 else nan, "ci95_high": high if test.n > 1 else nan,
            "p_value": nan,
            "final_loss": spread(r.final("loss")).mean,
            "train_seconds": spread(r.train_seconds).mean,
            "samples_per_second": spread([run.history[-1]["samples_per_second"] for run in r.runs]).mean,
            "parameters": r.runs[0].summary.parameters,
            "chosen_on": "validation" if r.validated else "test",
            "verdict": note,
            "_scores": r.chosen_on(metric),  # what the verdict tests (not a column)
            "_failed": bool(learnt),  # no better than guessing: never a tie with a cell that learnt
        })  # fmt: skip
    mark_verdicts(rows, baselines or [], metric)
    for row in rows:
        row.pop("_scores", None)
        row.pop("_failed", None)
    return rows


def trained_cells(results: list[CellResult]) -> list[CellResult]:
    """The cells with at least one finished run; an error when every run diverged."""
    trained = [r for r in results if r.runs]
    if not trained:
        raise TochaError("every run of the comparison diverged: try smaller learning rates")
    return trained


def baseline_score(row: dict[str, Any], metric: str) -> float:
    """A baseline's test score: its record keeps every metric under its own name."""
    return row[metric]


def baseline_chosen_on(row: dict[str, Any], metric: str) -> float:
    """What a baseline is ranked on: its validation score where it has one (fitted on the training
    rows only, scored on validation and test), else its test score."""
    return row.get(f"val_{metric}", row[metric])


ALPHA = 0.05  # the family-wise error rate of the verdicts


def mark_verdicts(rows: list[dict[str, Any]], baselines: list[dict[str, Any]], metric: str) -> None:
    """ "best" on the row with the best validation mean (test where the runs have no validation
    split), tocha cell or baseline. Every other row is tested against it: Welch's t-test of their
    seeds' scores (a baseline, fitted once, is a constant: a one-sample t-test of the cell's seeds
    against it), the p-values adjusted with Holm's method over the rows; "not distinguishable from
    best" where the adjusted p-value is at least 0.05, else "worse". One value against one: n/a."""
    cells = [(r["_scores"], r) for r in rows if r["seeds"] > 0]
    scored = cells + [([baseline_chosen_on(b, metric)], b) for b in baselines]
    mean = lambda scores: sum(scores) / len(scores)  # noqa: E731
    top_scores, top = max(scored, key=lambda pair: mean(pair[0]))
    others = [(scores, row) for scores, row in scored if row is not top]
    adjusted = holm([welch_p(scores, top_scores) for scores, _ in others])
    top["p_value"] = float("nan")
    top["verdict"] = "; ".join(v for v in ("best", top.get("verdict", "")) if v)
    for (_, row), p in zip(others, adjusted, strict=True):
        row["p_value"] = p
        if p != p:
            verdict = "n/a (one value each)"
        elif p >= ALPHA and row.get("_failed") and not top.get("_failed"):  # too few seeds, not a tie
            verdict = f"worse: it failed to learn, though its seeds are too few for the t-test to show it " \
                      f"(p={p:.2g})"  # fmt: skip
        else:
            verdict = f"not distinguishable from best (p={p:.2g})" if p >= ALPHA else f"worse (p={p:.2g})"
        row["verdict"] = "; ".join(v for v in (verdict, row.get("verdict", "")) if v)


POWER = 0.8  # the chance of telling apart a difference of the size said, with the seeds there are


def detectable_line(rows: list[dict[str, Any]], task: Task) -> str:
    """What the seeds can tell apart: the smallest difference between two cells that Welch's test
    finds at the 5% level 80% of the time with this many seeds and this spread (the minimum
    detectable difference, the seeds' spread pooled over the cells), and, where a cell said not
    distinguishable from the best lies closer than that, how many seeds would tell."""
    metric = task.primary
    cells = [r for r in rows if r.get("seeds", 0) > 0]
    n = min((r["seeds"] for r in cells), default=0)
    if n < 2:
        return "With one seed there is no spread, so no difference between cells can be told apart: " \
               "give --seeds 3 or more."  # fmt: skip
    spreads = [
        chosen(r, metric, "std") ** 2 for r in cells if chosen(r, metric, "std") == chosen(r, metric, "std")
    ]
    pooled = math.sqrt(sum(spreads) / len(spreads)) if spreads else 0.0

    def detectable(k: int) -> float:
        quantiles = t_critical(2 * k - 2, 1 - ALPHA) + t_critical(2 * k - 2, 2 * POWER - 1)
        return quantiles * pooled * math.sqrt(2 / k)

    _, factor, decimals = task.score_column()

    def shown(value: float) -> str:
        return f"{value * factor:.{decimals}f}" + (" points" if factor == 100 else "")

    line = (f"With {n} seeds and a spread of {shown(pooled)} between seeds, a difference in {metric} "
            f"smaller than {shown(detectable(n))} between two cells is not told apart (5% level, "
            f"{POWER:.0%} power).")  # fmt: skip
    best = next((r for r in cells if str(r.get("verdict", "")).startswith("best")), None)
    ties = [chosen(best, metric, "mean") - chosen(r, metric, "mean") for r in cells
            if best is not None and "not distinguishable" in str(r["verdict"])]  # fmt: skip
    gap = min((g for g in ties if g > 0), default=0.0)
    if gap and detectable(n) > gap and pooled > 0:
        needed = next((k for k in range(n + 1, 1001) if detectable(k) <= gap), None)
        more = f"about {needed} seeds" if needed else "more than 1,000 seeds"
        line += (
            f" The closest cell said not distinguishable is {shown(gap)} behind the best: {more} would tell."
        )
    return line


def chosen(row: dict[str, Any], metric: str, what: str) -> float:
    """A row's validation `what` (mean, std) of the metric, what its verdict was tested on; its test
    one where the runs had no validation split."""
    value = row.get(f"val_{metric}_{what}", float("nan"))
    return value if value == value else row.get(f"{metric}_{what}", float("nan"))


def baseline_csv_row(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """A baseline in summary.csv's columns: one fit, so no spread; its fit time as training time."""
    nan = float("nan")
    return {**dict.fromkeys(columns(metric), nan), "cell": f"{row['name']} (scikit-learn)", "seeds": 1,
            f"val_{metric}_mean": row.get(f"val_{metric}", nan),
            f"{metric}_mean": baseline_score(row, metric),
            "p_value": row.get("p_value", nan), "train_seconds": row["fit_seconds"],
            "chosen_on": "validation" if f"val_{metric}" in row else "test",
            "verdict": row.get("verdict", "")}  # fmt: skip


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table_cells(row: dict[str, Any], task: Task) -> list[str]:
    """The human columns of a summary or baseline row, its scores as the task shows them."""
    metric, (_, scale, places) = task.primary, task.score_column()
    shown = lambda value: f"{scale * value:.{places}f}" if value == value else "n/a"  # noqa: E731
    p = row.get("p_value", float("nan"))
    p_text = f"{p:.2g}" if p == p else ""
    if "ci95_low" in row and row["seeds"] == 0:  # every seed diverged
        return [row["cell"], "0", "diverged", "", "n/a", "", "", "", "", "", "", row["verdict"]]
    if "ci95_low" in row:
        one = row["seeds"] == 1  # no spread to show, and none measured
        spread_of = lambda m: " ± n/a (1 seed)" if one else f" ± {scale * row[m]:.{places}f}"  # noqa: E731
        validated = row["chosen_on"] == "validation"
        val = shown(row[f"val_{metric}_mean"]) + (spread_of(f"val_{metric}_std") if validated else " (none)")
        test = shown(row[f"{metric}_mean"]) + spread_of(f"{metric}_std")
        interval = "n/a (1 seed)" if one else f"[{shown(row['ci95_low'])}, {shown(row['ci95_high'])}]"
        return [row["cell"], str(row["seeds"]), val, test, interval, p_text, f"{row['final_loss']:.4f}",
                f"{row['train_seconds']:.1f}", f"{row['samples_per_second']:,.0f}", f"{row['parameters']:,}",
                row["chosen_on"], row["verdict"]]  # fmt: skip
    notes = [row.get("verdict", ""), f"{row['train_samples']} train samples", *row.get("notes", [])]
    seconds = f"{row['fit_seconds']:.1f} fit + {row.get('predict_seconds', 0.0):.1f} predict"
    val = row.get(f"val_{metric}")
    return [f"{row['name']} (scikit-learn)", "1 fit", shown(val) if val is not None else "n/a",
            shown(baseline_score(row, metric)), "n/a (one fit)", p_text, "", seconds, "", "",
            "validation" if val is not None else "test", "; ".join(v for v in notes if v)]  # fmt: skip


HEADERS = ["cell", "seeds", "val", "test", "95% interval (test)", "p vs best", "final loss", "train s",
           "samples/s", "params", "chosen on", "verdict"]  # fmt: skip


def headers(task: Task) -> list[str]:
    return ["cell", "seeds", task.score_column("val")[0], task.score_column("test")[0], *HEADERS[4:]]


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
                 *, baseline_rows: list[dict[str, Any]], seeds: list[int]) -> Path:  # fmt: skip
    """summary.csv, runs.csv, table.md, the figures and report.md tying them together."""
    from tocha.figures.plots import plot_overlay_curves, plot_score_vs_time

    task = trained_cells(results)[0].task
    metric = task.primary
    atomic_write_text(
        report_dir / "summary.csv", to_csv(rows + [baseline_csv_row(b, metric) for b in baseline_rows])
    )
    per_run = [
        {"cell": r.label, "seed": run.seed, "run_dir": str(run.run_dir.relative_to(report_dir)),
         "kept_epoch": run.summary.kept_epoch, **{f"val_{m}": v for m, v in run.summary.val.items()},
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
                                 scale, label=label)  # fmt: skip
    atomic_write(report_dir / "curves.png", lambda f: f.write(curves))
    points = [(r.label, r.train_seconds, r.final(metric)) for r in trained]
    scores = plot_score_vs_time(points, metric, scale, label)
    atomic_write(report_dir / "accuracy_vs_time.png", lambda f: f.write(scores))
    text = report_markdown(results, table, report_dir, seeds, task=task, rows=rows)
    atomic_write_text(report_dir / "report.md", text)
    return report_dir / "report.md"


def report_markdown(results: list[CellResult], table: str, report_dir: Path, seeds: list[int],
                    *, task: Task, rows: list[dict[str, Any]]) -> str:  # fmt: skip
    """report.md: how the comparison was made, the table, and links to the figures."""
    # The figure is of tocha's best cell (the table's best row may be a scikit-learn baseline), chosen
    # as everything is: on validation.
    metric = task.primary
    best = max(trained_cells(results), key=lambda r: spread(r.chosen_on(metric)).mean)
    best_run = max(best.runs, key=lambda run: (run.summary.val or run.summary.final_test)[metric])
    figure, caption = task.result_figure
    where = best_run.run_dir.relative_to(report_dir) / figure
    on = "validation" if best.validated else "test (the runs have no validation split: --val-fraction 0)"
    lines = [
        f"# Comparison: {', '.join(sorted({k for r in results for k in r.cell}))}",
        "",
        f"Base configuration: `{report_dir / 'comparison.yaml'}`. Each cell trained with seeds "
        f"{', '.join(str(seed) for seed in seeds)}. Cells are chosen on the **{on}** {metric}: each run "
        "keeps its best epoch on validation, and the cells are ranked on their validation means. The "
        f"test {metric} is scored once per run, on the weights it kept, and only reported: mean ± "
        "sample standard deviation, with the t-based 95% interval of the mean (n/a with one seed; "
        "clipped to the possible range, 0-100% for accuracy, at most 1 for R²). A cell no better than "
        "guessing (a classifier at chance level, a regression with R² <= 0) is marked as having failed "
        "to learn. The verdict ranks every row, scikit-learn baselines included (fitted on the training "
        "rows only, scored on validation and test): `best` is the top row; each other row is tested "
        "against it with Welch's t-test on the validation scores of its seeds (a baseline, fitted once, "
        "is a constant: a one-sample t-test), the p-values adjusted over the rows with Holm's method; "
        "`not distinguishable from best` where the adjusted p-value is at least 0.05, `worse` below "
        "(and a cell that failed to learn is never a tie with one that learnt).",
        "",
        table,
        "",
        detectable_line(rows, task),
        "",
        "## Learning curves",
        "",
        f"![validation {metric} and loss per epoch](curves.png)",
        "",
        f"## Test {metric} against training time",
        "",
        f"![{metric} against training time](accuracy_vs_time.png)",
        "",
    ]
    if figure:  # the task draws its results
        lines += [f"## {caption} of tocha's best cell on validation ({best.label}, seed {best_run.seed}), "
                  "on the test split", "", f"![{caption.lower()}]({where.as_posix()})", ""]  # fmt: skip
    lines += [
        "Every run's folder (config, metrics, checkpoint, plots) is under `runs/`.",
    ]
    return "\n".join(lines) + "\n"
