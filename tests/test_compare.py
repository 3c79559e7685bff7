"""`tocha compare`: grid expansion, statistics against scipy, resume after an interruption, the
report files, and the command line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from helpers import run_cli, run_main

from tocha.config import RunConfig, set_value
from tocha.errors import TochaError
from tocha.experiments.compare import compare
from tocha.experiments.grid import cell_slug, expand_grid, parse_vary, resolve_key
from tocha.experiments.stats import spread
from tocha.training import train


def test_keys_resolve_to_config_keys():
    assert resolve_key("activation") == "model.activation"
    assert resolve_key("lr") == "train.lr"
    assert resolve_key("batch-size") == "train.batch_size"
    assert resolve_key("model") == "model.name"
    assert resolve_key("train.epochs") == "train.epochs"
    with pytest.raises(TochaError, match="colour"):
        resolve_key("colour")


def test_values_are_typed_and_lists_are_possible():
    assert parse_vary("lr=0.1,1e-3") == ("train.lr", [0.1, 0.001])
    assert parse_vary("nesterov=true,false") == ("train.nesterov", [True, False])
    assert parse_vary("hidden_sizes=[[128,64],[256]]") == ("model.hidden_sizes", [[128, 64], [256]])
    with pytest.raises(TochaError):
        parse_vary("lr")


def test_grid_is_the_product_in_order():
    grid = expand_grid(["activation=relu,tanh", "optimizer=sgd,adam,adamw"])
    assert len(grid) == 6
    assert grid[0] == {"model.activation": "relu", "train.optimizer": "sgd"}
    assert grid[-1] == {"model.activation": "tanh", "train.optimizer": "adamw"}
    assert len({cell_slug(c) for c in grid}) == 6
    with pytest.raises(TochaError, match="twice"):
        expand_grid(["lr=0.1", "train.lr=0.2"])


@pytest.mark.parametrize(
    "values", [[0.9], [0.91, 0.93], [0.8, 0.85, 0.83, 0.9, 0.88], list(np.linspace(0.5, 0.9, 12))]
)
def test_spread_matches_scipy(values):
    scipy_stats = pytest.importorskip("scipy.stats")
    s = spread(values)
    assert s.mean == pytest.approx(np.mean(values))
    if len(values) == 1:
        assert s.std == 0 and s.low == s.high == s.mean
        return
    assert s.std == pytest.approx(np.std(values, ddof=1))
    low, high = scipy_stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
    )
    assert s.low == pytest.approx(low, rel=1e-3) and s.high == pytest.approx(high, rel=1e-3)


def base_config(tmp_path) -> RunConfig:
    config = RunConfig()
    for key, value in {"data.name": "mnist-sample", "model.name": "mlp", "model.hidden_sizes": [32],
                       "train.epochs": 1, "train.batch_size": 256, "train.lr": 0.01}.items():  # fmt: skip
        set_value(config, key, value)
    return config


def test_interrupted_comparison_resumes_without_retraining(tmp_path):
    """The first attempt dies after 3 runs (a real exception from the training function); the
    second finishes the grid and trains only the 3 runs that were missing."""
    calls = []

    def dying_train(config, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises
        calls.append(config.run_name)
        return train(config, **kwargs)

    base = base_config(tmp_path)
    report = tmp_path / "report"
    from tocha.experiments import compare as compare_module

    with pytest.raises(KeyboardInterrupt):
        compare_module.run_grid(base, expand_grid(["optimizer=sgd,adam,adamw"]), [0, 1], report,
                                log=lambda _l: None, train_fn=dying_train)  # fmt: skip
    assert len(calls) == 3
    trained_again = []

    def counting_train(config, **kwargs):
        trained_again.append(config.run_name)
        return train(config, **kwargs)

    lines: list[str] = []
    results = compare_module.run_grid(base, expand_grid(["optimizer=sgd,adam,adamw"]), [0, 1], report,
                                      log=lines.append, train_fn=counting_train)  # fmt: skip
    assert len(trained_again) == 3 and not set(trained_again) & set(calls)
    assert [len(r.runs) for r in results] == [2, 2, 2]
    # The first three were reused, said so, and their recorded times already estimate the rest.
    assert [("reused" in line) for line in lines] == [True] * 3 + [False] * 3
    assert "about" in lines[0] and "not known" not in lines[0]


def test_report_files_and_verdicts(tmp_path):
    report = tmp_path / "report"
    result = compare(base_config(tmp_path), ["optimizer=sgd,adam"], [0, 1], report, log=lambda _l: None)
    for name in ("report.md", "table.md", "summary.csv", "runs.csv", "comparison.yaml", "curves.png",
                 "accuracy_vs_time.png"):  # fmt: skip
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert (report / "curves.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((report / "summary.csv").open()))
    assert len(rows) == 2 and sum(r["verdict"] == "best" for r in rows) == 1
    best = max(result.results, key=lambda r: r.score.mean)
    assert result.rows[result.results.index(best)]["verdict"] == "best"
    text = (report / "report.md").read_text()
    assert "curves.png" in text and "confusion_matrix.png" in text and "optimizer=adam" in text
    # the confusion matrix the report links to exists
    link = text.split("![confusion matrix](")[1].split(")")[0]
    assert (report / link).is_file()
    runs = list(csv.DictReader((report / "runs.csv").open()))
    accuracies = [float(r["test_accuracy"]) for r in runs if r["cell"] == "optimizer=adam"]
    assert float(rows[1]["accuracy_mean"]) == pytest.approx(np.mean(accuracies))


def test_a_different_comparison_in_the_same_folder_is_refused(tmp_path):
    report = tmp_path / "report"
    compare(base_config(tmp_path), ["optimizer=sgd"], [0], report, log=lambda _l: None)
    with pytest.raises(TochaError, match="different comparison"):
        compare(base_config(tmp_path), ["optimizer=adam"], [0], report, log=lambda _l: None)


def test_bad_cells_are_rejected_before_any_training(tmp_path):
    with pytest.raises(TochaError, match="train.lr"):
        compare(base_config(tmp_path), ["lr=0.1,0"], [0], tmp_path / "r", log=lambda _l: None)
    assert not (tmp_path / "r" / "runs").exists()


def test_compare_command_line(tmp_path):
    result = run_cli("compare", "--data", "mnist-sample", "--model", "linear", "--epochs", "1", "--vary",
                     "lr=0.001,0.01", "--seeds", "2", "--out", str(tmp_path / "rep"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[4/4]" in result.stdout and "95% interval" in result.stdout and "best" in result.stdout
    plan = json.loads(
        json.dumps(__import__("yaml").safe_load((tmp_path / "rep" / "comparison.yaml").read_text()))
    )
    assert plan["cells"] == [{"train.lr": 0.001}, {"train.lr": 0.01}] and plan["seeds"] == [0, 1]
    out = ["--out", str(tmp_path / "bad")]
    bad = run_main("compare", "--data", "mnist-sample", "--vary", "colour=red", *out)
    assert bad.returncode == 2 and "colour" in bad.stderr and "Traceback" not in bad.stderr


def test_figure_commands(tmp_path):
    """`tocha plot activations` and `tocha data show` write real PNGs; bad input is one clear error."""
    from PIL import Image

    act = run_main("plot", "activations", "--out", str(tmp_path / "act.png"))
    assert act.returncode == 0, act.stderr
    with Image.open(tmp_path / "act.png") as im:
        assert im.width > 600 and im.height > 300
    show = run_main("data", "show", "mnist-sample", "--per-class", "3", "--out", str(tmp_path / "digits.png"))
    assert show.returncode == 0, show.stderr
    assert "10 classes" in show.stdout
    with Image.open(tmp_path / "digits.png") as im:
        assert im.height > im.width / 3  # ten rows of digits
    bad = run_main("data", "show", "mnist-sample", "--per-class", "0")
    assert bad.returncode == 2 and "--per-class" in bad.stderr


def test_one_base_serves_a_grid_over_models(tmp_path):
    """hidden_sizes (mlp) and hidden_units (tinyvgg) in one base: each model takes what it uses."""
    from tocha.experiments.grid import cell_config

    base = base_config(tmp_path)
    base.model.args = {**base.model.args, "hidden_units": 4}
    configs = {m: cell_config(base, {"model.name": m}) for m in ("linear", "mlp", "tinyvgg")}
    assert configs["linear"].model.args is None  # each model holds only the options it takes
    assert configs["mlp"].model.args == {"hidden_sizes": [32]}
    assert configs["tinyvgg"].model.args == {"hidden_units": 4}
    assert cell_config(base, {"train.lr": 0.1}).model.args["hidden_sizes"] == [32]  # base model is mlp
    with pytest.raises(TochaError, match="hidden_units"):  # set by the cell itself: still an error
        compare(base, ["hidden_units=3", "model=linear"], [0], tmp_path / "r", log=lambda _l: None)


def test_baselines_join_the_table_on_the_same_split(tmp_path):
    pytest.importorskip("sklearn")
    report = tmp_path / "report"
    result = compare(
        base_config(tmp_path), ["optimizer=adam"], [0], report, baselines=["knn"], log=lambda _l: None
    )
    (row,) = result.baseline_rows
    assert (
        row["name"] == "knn" and row["train_samples"] == 3601 and 0.8 < row["accuracy"] <= 1
    )  # train rows only
    assert 0.8 < row["val_accuracy"] <= 1  # scored on validation too: what the table ranks it on
    assert "knn (scikit-learn)" in (report / "table.md").read_text()
    stored = json.loads((report / "baselines.json").read_text())
    assert stored["knn"]["accuracy"] == row["accuracy"]
    stored["knn"]["fit_seconds"] = 12345.0  # a mark: a refit would overwrite it
    (report / "baselines.json").write_text(json.dumps(stored))
    again = compare(
        base_config(tmp_path), ["optimizer=adam"], [0], report, baselines=["knn"], log=lambda _l: None
    )
    assert again.baseline_rows[0]["fit_seconds"] == 12345.0  # read back, not fitted again


def test_a_diverging_cell_is_marked_and_the_grid_goes_on(tmp_path):
    report = tmp_path / "report"
    result = compare(
        base_config(tmp_path), ["optimizer=sgd", "lr=0.01,1e6"], [0, 1], report, log=lambda _l: None
    )
    healthy, diverged = result.rows
    assert healthy["verdict"] == "best" and healthy["seeds"] == 2
    assert diverged["seeds"] == 0 and diverged["verdict"] == "diverged in 2/2 seeds"
    markers = sorted(p.parent.name for p in (report / "runs").glob("*/diverged.json"))
    assert len(markers) == 2 and all("1000000" in m for m in markers)
    info = json.loads((report / "runs" / markers[0] / "diverged.json").read_text())
    assert info["epoch"] == 1 and info["step"] >= 1
    assert "diverged" in (report / "table.md").read_text()


def test_every_run_diverging_is_said_before_the_baselines_fit(tmp_path):
    lines = []
    with pytest.raises(TochaError, match="every run of the comparison diverged"):
        compare(base_config(tmp_path), ["optimizer=sgd", "lr=1e6"], [0], tmp_path / "report",
                baselines=["knn"], log=lines.append)  # fmt: skip
    assert not any(line.startswith("baseline") for line in lines)  # no time spent fitting them


def test_cells_never_share_a_folder():
    """Labels that differ only after the folder name's length, or only in characters a folder name
    cannot hold, still get folders of their own; a short plain label is its own folder name."""
    long_a = {"model.hidden_sizes": [8] * 40 + [8]}
    long_b = {"model.hidden_sizes": [8] * 40 + [64]}
    assert cell_slug(long_a) != cell_slug(long_b) and len(cell_slug(long_a)) <= 113
    paths = [{"data.name": "a/b"}, {"data.name": "a_b"}, {"data.name": "a b"}, {"data.name": "a?b"}]
    assert len({cell_slug(c) for c in paths}) == 4
    assert cell_slug({"train.optimizer": "sgd"}) == "optimizer=sgd"
    assert cell_slug({"train.optimizer": "sgd"}) != cell_slug({"train.optimizer": "sgd", "train.lr": 0.1})


def test_the_verdict_ranks_baselines_too(tmp_path):
    """tocha cells that lose to a baseline: the baseline is "best", no tocha row is."""
    pytest.importorskip("sklearn")
    report = tmp_path / "report"
    config = base_config(tmp_path)
    config.model.name, config.train.lr = "linear", 1e-5  # barely trained: kNN must win
    result = compare(config, ["optimizer=sgd,adam"], [0, 1], report, baselines=["knn"], log=lambda _l: None)
    knn = result.baseline_rows[0]
    assert knn["verdict"] == "best" and all("best" != row["verdict"] for row in result.rows)
    assert max(row["accuracy_mean"] for row in result.rows) < knn["accuracy"]
    table = (report / "table.md").read_text()
    knn_line = next(line for line in table.splitlines() if line.startswith("| knn (scikit-learn)"))
    assert "| best;" in knn_line
    csv_rows = list(csv.DictReader((report / "summary.csv").open()))
    assert [r["verdict"] for r in csv_rows if r["cell"] == "knn (scikit-learn)"] == ["best"]
    assert "tocha's best cell" in (report / "report.md").read_text()


def test_one_seed_shows_no_spread_rather_than_a_zero_one(tmp_path):
    report = tmp_path / "report"
    result = compare(base_config(tmp_path), ["optimizer=sgd,adam"], [0], report, log=lambda _l: None)
    table = (report / "table.md").read_text()
    assert "± 0.00" not in table and table.count("n/a (1 seed)") == 6  # two cells: 2 spreads, interval
    rows = list(csv.DictReader((report / "summary.csv").open()))
    assert all(r["accuracy_std"] == "nan" and r["ci95_low"] == "nan" for r in rows)
    assert sum(r["verdict"] == "best" for r in rows) == 1 and len(result.rows) == 2


def test_verdicts_test_each_row_against_the_best_with_welch_and_holm():
    from tocha.experiments.report import mark_verdicts
    from tocha.experiments.stats import holm, welch_p

    def cell(name, scores):
        return {"cell": name, "seeds": len(scores), "_scores": scores, "verdict": ""}

    a, b = cell("a", [0.80, 0.81, 0.79]), cell("b", [0.70, 0.71, 0.69])
    knn = {"name": "knn", "accuracy": 0.50, "val_accuracy": 0.805}  # ranked on validation, not test
    logreg = {"name": "logreg", "accuracy": 0.90, "val_accuracy": 0.60}
    mark_verdicts([a, b], [knn, logreg], "accuracy")
    assert knn["verdict"] == "best"  # the top validation score, though its test score is the worst
    expected = holm(
        [welch_p(a["_scores"], [0.805]), welch_p(b["_scores"], [0.805]), welch_p([0.60], [0.805])]
    )
    assert [a["p_value"], b["p_value"]] == pytest.approx(expected[:2])
    assert a["verdict"].startswith("not distinguishable from best (p=") and b["verdict"].startswith(
        "worse (p="
    )
    assert logreg["verdict"] == "n/a (one value each)"  # a fit against a fit: nothing to test
    a, knn = cell("a", [0.80, 0.81, 0.79]), {"name": "knn", "accuracy": 0.79, "val_accuracy": 0.79}
    mark_verdicts([a], [knn], "accuracy")  # a cell is best; the baseline against its seeds
    assert a["verdict"] == "best" and knn["verdict"].startswith("not distinguishable from best")


def cell_with(accuracies: list[float], classes: int = 10):
    from pathlib import Path

    from tocha.experiments.cells import CellResult, RunRecord
    from tocha.runs.records import RunSummary

    def record(seed: int, accuracy: float) -> RunRecord:
        final = {"loss": 1.0, "accuracy": accuracy}
        summary = RunSummary(
            "d", "", "linear", 10, 1, final, {"accuracy": accuracy}, 1.0, 1.0, "cpu", classes=classes
        )
        return RunRecord(seed, Path("."), summary, [{"samples_per_second": 1.0}])

    return CellResult({"train.lr": 0.1}, [record(i, a) for i, a in enumerate(accuracies)])


def test_intervals_stay_in_range_and_chance_level_is_flagged():
    from tocha.experiments.report import summary_rows

    near_perfect, chance = cell_with([1.0, 0.98]), cell_with([0.1, 0.0982])
    rows = summary_rows([near_perfect, chance])
    assert spread([1.0, 0.98]).high > 1 and rows[0]["ci95_high"] == 1.0 and rows[0]["ci95_low"] < 1.0
    assert spread([0.1, 0.0982]).low >= 0 and "failed to learn: at chance level (10.0%)" in rows[1]["verdict"]
    assert "failed to learn" not in rows[0]["verdict"]


def test_time_left_comes_from_measured_runs_per_cell():
    from tocha.experiments.grid_runs import eta

    cells = [{"train.lr": 0.1}, {"train.lr": 0.01}]
    assert eta(cells, [0, 1], 2, {}) is None  # nothing timed yet (everything so far was resumed)
    assert eta(cells, [0, 1], 2, {"lr=0.1": [10.0, 20.0]}) == pytest.approx(30.0)  # 2 runs at the mean, 15
    assert eta(cells, [0, 1], 3, {"lr=0.1": [10.0], "lr=0.01": [40.0]}) == pytest.approx(40.0)  # its own cell


def test_baselines_are_checked_before_the_grid_trains(tmp_path, monkeypatch):
    import sys

    with pytest.raises(TochaError, match="unknown classification baseline 'nope'"):
        compare(base_config(tmp_path), ["optimizer=sgd"], [0], tmp_path / "r", baselines=["nope"])
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    with pytest.raises(TochaError, match="scikit-learn is not installed"):
        compare(base_config(tmp_path), ["optimizer=sgd"], [0], tmp_path / "r", baselines=["knn"])
    assert not (tmp_path / "r").exists()  # refused before any folder or run


def test_run_folders_of_list_values_stay_readable():
    slug = cell_slug({"model.hidden_sizes": [128, 64], "train.precision": "fp32"})
    assert slug.startswith("hidden_sizes=128-64__precision=fp32~")


def test_a_cell_that_failed_to_learn_is_never_a_tie_and_what_the_seeds_can_tell_is_said():
    from tocha.experiments.report import detectable_line, summary_rows
    from tocha.tasks import ClassificationTask

    learnt, chance, close = cell_with([0.85, 0.55]), cell_with([0.1, 0.1]), cell_with([0.80, 0.52])
    rows = summary_rows([learnt, chance, close])
    assert rows[0]["verdict"].startswith("best")
    assert rows[1]["p_value"] >= 0.05  # two seeds of a wide spread: the t-test alone would call it a tie
    assert rows[1]["verdict"].startswith("worse: it failed to learn")
    assert rows[2]["verdict"].startswith("not distinguishable from best")
    line = detectable_line(rows, ClassificationTask())
    assert (
        line.startswith("With 2 seeds and a spread of ") and "is not told apart (5% level, 80% power)" in line
    )
    assert "The closest cell said not distinguishable is 4.00 points behind the best: about" in line
    needed = int(line.rsplit("about ", 1)[1].split()[0])
    assert needed > 2  # more seeds than it has
    assert detectable_line(summary_rows([cell_with([0.8])]), ClassificationTask()).startswith("With one seed")
