"""The task seam holds: a third task, defined here and nowhere in tocha, goes through train,
evaluate, predict, compare and export; and outside `tocha/tasks/` no code decides what outputs
mean by looking at metric names or result types.

The task is multi-label classification: a table's target column holds sets of labels ("a c"), the
labels are multi-hot rows (N, K), the model has one output per label, the loss is binary
cross-entropy on the logits, and an answer is the set of labels whose probability is over 1/2.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import run_main

import tocha
from tocha.errors import TochaError
from tocha.tasks import TASKS, Evaluation, Target, Task, register_task

SRC = Path(__file__).resolve().parents[1] / "src" / "tocha"


class MultiLabelTask(Task):
    name = "label_sets"
    losses = ("bce",)
    metrics = ("loss", "exact_match", "label_accuracy")
    primary = "label_accuracy"
    bounds = (0.0, 1.0)
    decision_name = "label-set"

    def read_target(self, cells, numbers, column, where):  # each cell: its labels, space-separated
        classes = sorted({label for cell in cells for label in cell.split()})
        if len(classes) < 2:
            raise TochaError(f"{where}: {column} holds fewer than two labels")
        return Target(np.array([[c in cell.split() for c in classes] for cell in cells], np.float32), classes)

    def unusable_targets(self, cells, missing):
        return np.zeros(len(cells), dtype=bool)  # an empty cell is the empty set of labels

    def output_size(self, classes):
        return len(classes)

    def make_loss(self, name, label_smoothing):
        return lambda outputs, labels: torch.nn.functional.binary_cross_entropy_with_logits(outputs, labels)

    def new_sums(self, device):
        return {
            name: torch.zeros((), dtype=torch.float64, device=device) for name in ("loss", "exact", "right")
        }

    def add(self, sums, loss, outputs, labels):
        right = (outputs.detach() > 0) == (labels > 0.5)  # (B, K)
        sums["loss"].add_(loss.detach() * len(labels))
        sums["exact"].add_(right.all(dim=1).sum())
        sums["right"].add_(right.float().mean(dim=1).sum())

    def summarize(self, sums, samples):
        loss, exact, right = (sums[k].item() for k in ("loss", "exact", "right"))
        return {"loss": loss / samples, "exact_match": exact / samples, "label_accuracy": right / samples}

    def evaluate(self, outputs, labels):
        sums = self.new_sums(outputs.device)
        self.add(sums, self.loss(outputs.float(), labels.float()), outputs, labels)
        return Evaluation(self.summarize(sums, len(labels)), len(labels), outputs, labels)

    def format(self, metric, value):
        return f"{value:.4f}" if metric == "loss" else f"{100 * value:.1f}%"

    def answers(self, outputs, classes, top_k):
        return [[name for name, p in zip(classes, row, strict=True) if p > 0] for row in outputs]

    def answer_key(self, classes):
        return "labels"

    def answer_text(self, answer: Any) -> str:
        return " ".join(answer)

    def agreement(self, outputs, reference, atol, rtol):
        agree = ((outputs > 0) == (reference > 0)).all(axis=1)
        tie = (np.abs(reference) <= atol + rtol * np.abs(reference)).any(axis=1)
        return agree, tie

    def export_score(self, outputs, labels):
        return float(((outputs > 0) == (labels > 0.5)).mean())


@pytest.fixture
def multilabel(monkeypatch):
    """The task registered for this test alone."""
    monkeypatch.setitem(TASKS, MultiLabelTask.name, MultiLabelTask)
    register_task(MultiLabelTask)
    yield MultiLabelTask
    TASKS.pop(MultiLabelTask.name, None)


def tags_table(path: Path, rows: int = 600, seed: int = 0) -> Path:
    """Five numeric features; the tags a (x0 > 0), b (x1 > 0) and c (x2 + x3 > 0.5) of each row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"x{i}" for i in range(5)] + ["tags"])
        for row in x:
            tags = [t for t, on in (("a", row[0] > 0), ("b", row[1] > 0), ("c", row[2] + row[3] > 0.5)) if on]
            writer.writerow([f"{v:.5f}" for v in row] + [" ".join(tags)])
    return path


def test_a_task_of_ones_own_goes_through_every_command(multilabel, tmp_path):
    table = tags_table(tmp_path / "tags.csv")
    options = {"data": str(table), "target": "tags", "task": "label_sets", "model": "mlp", "epochs": 6,
               "lr": 0.01, "out_dir": str(tmp_path / "runs")}  # fmt: skip
    run = tocha.train(run_name="ml", log=lambda _line: None, **options)
    assert run.task.name == "label_sets" and run.data.train.labels.shape[1:] == (3,)  # labels (N, K)
    assert run.final.label_accuracy > 0.85, run.final.metrics()
    header = (run.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "train_exact_match" in header and "val_label_accuracy" in header
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["task"] == "label_sets" and summary["final_test_label_accuracy"] == pytest.approx(
        run.final.label_accuracy
    )
    assert (run.run_dir / "curves.png").is_file()

    evaluated = tocha.evaluate(run.run_dir)
    assert evaluated.evaluation.label_accuracy == pytest.approx(run.final.label_accuracy)
    report = json.loads((evaluated.out_dir / "evaluation.json").read_text())
    assert report["exact_match"] == pytest.approx(run.final.exact_match)

    answers = tocha.load(run.run_dir).predict(str(table))
    with table.open() as f:
        truth = [set(row["tags"].split()) for row in csv.DictReader(f)]
    assert [a["row"] for a in answers] == list(range(1, len(truth) + 1))
    agree = [
        (label in set(a["labels"])) == (label in t)
        for a, t in zip(answers, truth, strict=True)
        for label in "abc"
    ]
    assert sum(agree) / len(agree) > 0.85  # the answers are the labels the rows have
    printed = run_main("predict", run.run_dir, table)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines()[0] == "row,labels" and printed.stdout.splitlines()[1].startswith("1,")

    compared = tocha.compare(["lr=0.01,0.003"], seeds=2, out=tmp_path / "report", log=lambda _l: None,
                             **{k: v for k, v in options.items() if k != "out_dir"})  # fmt: skip
    assert [row["seeds"] for row in compared.rows] == [2, 2]
    assert all(0.5 < row["label_accuracy_mean"] <= 1 for row in compared.rows)
    assert "test label_accuracy (mean ± std)" in (tmp_path / "report" / "table.md").read_text()
    assert sum(row["verdict"].split(";")[0] == "best" for row in compared.rows) == 1

    for fmt in ("onnx", "safetensors"):
        exported = tocha.export(run.run_dir, fmt, tmp_path / f"ml.{fmt}", log=lambda _l: None)
        assert exported.parity.ok and exported.parity.decision == "label-set"
        assert exported.parity.accuracy == pytest.approx(exported.parity.reference_accuracy)
    assert tocha.load(tmp_path / "ml.safetensors").predict(str(table))[:5] == answers[:5]


def test_an_unknown_task_is_named_before_any_work(tmp_path):
    table = tags_table(tmp_path / "tags.csv", rows=50)
    result = run_main("train", "--data", table, "--target", "tags", "--task", "label_sets",
                      "--out", tmp_path / "runs")  # fmt: skip
    assert result.returncode == 2 and "unknown task 'label_sets'" in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


# What deciding by a result's shape looks like: a metric's name read, a result's attributes probed.
SNIFFING = [
    r"is_regression",
    r"hasattr\(",
    r"""\[\s*["'](accuracy|r2|rmse|mae|mse)["']\s*\]""",
    r"""\.get\(\s*["'](accuracy|r2|rmse|mae|mse)["']""",
    r"""["'](accuracy|r2|rmse|mae|mse|confusion)["']\s+(not\s+)?in\b""",
    r"""[!=]=\s*["'](regression|classification|accuracy|r2)["']""",
    r"""["'](regression|classification)["']\s*[!=]=""",
]


def sniffing_lines(root: Path) -> list[str]:
    """Lines outside tocha/tasks/ (and the standalone lessons) that decide by a metric's or task's name."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in ("tasks", "lessons"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if any(re.search(pattern, line) for pattern in SNIFFING):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_no_code_outside_the_tasks_decides_what_outputs_mean():
    assert sniffing_lines(SRC) == []


def test_the_sniffing_check_finds_sniffing(tmp_path):
    """The check above can fail: a line that decides by a metric's name is found."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.py").write_text('figure = "confusion" if "accuracy" in final else "r2"\n')
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "b.py").write_text('metric = row["accuracy"]\n')  # inside the tasks: allowed
    assert sniffing_lines(tmp_path) == ['runs/a.py:1: figure = "confusion" if "accuracy" in final else "r2"']
