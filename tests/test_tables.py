"""Tables end to end: train, evaluate, predict, resume, compare, export and summary on CSV files and
the registered tables, regression and classification, and every bad table refused at the command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, run_main

from tocha import api
from tocha.config import RunConfig, config_from_dict
from tocha.data.table_set import linear_truth
from tocha.data.tables import LINEAR_BIAS, TABLES_DIR
from tocha.inference.model import load_inference_model


def table_config(tmp_path: Path, **sections: dict) -> RunConfig:
    raw = {"out_dir": str(tmp_path / "runs"), **sections}
    raw.setdefault("train", {})
    return config_from_dict(raw)


def test_the_notes_example_prints_every_tenth_epoch_and_learns(tmp_path):
    result = run_main("train", "--data", "synthetic-regression", "--model", "linear", "--loss", "mse",
                      "--optimizer", "sgd", "--lr", "0.01", "--epochs", "100", "--batch-size", "100",
                      "--val-fraction", "0", "--log-every", "10", "--out", tmp_path,
                      "--name", "notes")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == [f"{e}/100" for e in range(10, 101, 10)]
    losses = [float(line.split("train loss ")[1].split()[0]) for line in lines]
    assert losses[-1] < losses[0]
    run = tmp_path / "notes"
    assert {"predictions.png", "curves.png", "summary.json"} <= {p.name for p in run.iterdir()}
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_mse", "train_rmse", "train_mae", "train_r2", "test_r2"} <= set(header)
    assert "done: test RMSE" in result.stdout


def test_a_linear_fit_recovers_the_known_weights(tmp_path):
    train = {"epochs": 30, "optimizer": "adam", "lr": 0.01, "batch_size": 50}
    config = table_config(tmp_path, data={"name": "synthetic-linear"}, model={"name": "linear"}, train=train)
    api.train(config, log=lambda _line: None)
    model = load_inference_model(next((tmp_path / "runs").iterdir()), torch.device("cpu"))
    layer = model.model[-1]
    # The model sees standardised features and learns the standardised target: back to raw units.
    norm, (mean, std) = model.normalize, (model.task.mean, model.task.std)
    weights = layer.weight.detach()[0] / torch.tensor(norm.std) * std
    bias = std * (layer.bias.item() - float((layer.weight.detach()[0] * torch.tensor(norm.mean)
                                             / torch.tensor(norm.std)).sum())) + mean  # fmt: skip
    assert torch.allclose(weights, linear_truth(), atol=0.03), weights
    assert bias == pytest.approx(LINEAR_BIAS, abs=0.03)


def test_sgd_on_diabetes_reaches_the_closed_form_least_squares(tmp_path):
    """tocha's linear model with SGD (full batches: gradient descent) against scikit-learn's
    LinearRegression on the same split: its test MSE within 0.5% of the closed form's."""
    pytest.importorskip("sklearn")
    from tocha.data.load import load_configured
    from tocha.experiments.baselines import run_baseline

    train = {"epochs": 300, "optimizer": "sgd", "lr": 0.1, "batch_size": 400}
    # Every training row, and the last weights: gradient descent against the closed form, nothing chosen.
    config = table_config(tmp_path, data={"name": "diabetes", "val_fraction": 0}, model={"name": "linear"},
                          train=train)  # fmt: skip
    result = api.train(config, log=lambda _line: None)
    closed = run_baseline("linear", load_configured(config.data, log=lambda _line: None))
    assert result.final.mse <= 1.005 * closed.metrics["mse"], (result.final.mse, closed.metrics)
    assert result.final.r2 > 0.45


def test_a_classification_table_trains_evaluates_and_predicts(tmp_path):
    run = tmp_path / "iris"
    trained = run_main("train", "--data", "iris", "--model", "mlp", "--epochs", "30", "--batch-size", "16",
                       "--out", tmp_path, "--name", "iris")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "classification (registered as classification)" in trained.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_test_accuracy"] > 0.8  # chance is 1/3; the epoch is chosen on 12 validation rows
    evaluated = run_main("evaluate", run)
    assert evaluated.returncode == 0 and "accuracy" in evaluated.stdout and "setosa" in evaluated.stdout
    assert "iris test split: 30 samples" in evaluated.stdout
    rows = tmp_path / "rows.csv"
    with (TABLES_DIR / "iris.csv").open() as f:
        table = list(csv.reader(f))
    rows.write_text("\n".join(",".join(r[:4]) for r in [table[0], table[1], table[51], table[101]]) + "\n")
    predicted = run_main("predict", run, rows)
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0] == "row,predicted,probability" and lines[1].startswith("1,setosa,")
    assert [line.split(",")[1] for line in lines[1:]] == ["setosa", "versicolor", "virginica"]


def test_regression_round_trip_evaluate_predict_resume_export(tmp_path):
    run = tmp_path / "diab"
    first = run_main("train", "--data", "diabetes", "--model", "mlp", "--epochs", "3", "--out", tmp_path,
                     "--name", "diab")  # fmt: skip
    assert first.returncode == 0, first.stderr
    summary = json.loads((run / "summary.json").read_text())
    evaluated = run_main("evaluate", run)
    report = json.loads((run / "eval-diabetes" / "evaluation.json").read_text())
    assert evaluated.returncode == 0 and report["samples"] == 88
    assert report["r2"] == pytest.approx(summary["final_test_r2"], abs=1e-6)
    assert report["rmse"] == pytest.approx(summary["final_test_rmse"], rel=1e-6)
    # Rows of a CSV are encoded as in training: the first row of the file, predicted by the command
    # and by the model on the training pipeline's own tensor, agree.
    rows = tmp_path / "rows.csv"
    lines = (TABLES_DIR / "diabetes.csv").read_text().splitlines()
    rows.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines[:3]) + "\n")
    predicted = run_main("predict", run, rows, "--json")
    values = [r["progression"] for r in json.loads(predicted.stdout)]
    full = rows.with_name("scored.csv")  # a table file evaluated: every row, into eval-scored/ (no .csv)
    full.write_text("\n".join(lines[:41]) + "\n")
    assert run_main("evaluate", run, "--data", full).returncode == 0
    assert json.loads((run / "eval-scored" / "evaluation.json").read_text())["samples"] == 40
    model = load_inference_model(run, torch.device("cpu"))
    x = torch.tensor([[float(v) for v in line.split(",")[:-1]] for line in lines[1:3]])
    assert values == pytest.approx(model.logits(x)[:, 0].tolist(), rel=1e-6)
    # --epochs 5 extends the run in its own folder.
    resumed = run_main("train", "--resume", run, "--epochs", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert len((run / "metrics.csv").read_text().splitlines()) == 6
    exported = run_main("export", run, "--format", "onnx")
    assert exported.returncode == 0, exported.stderr
    parity = json.loads((run / "model.onnx.parity.json").read_text())
    assert parity["ok"] and parity["accuracy"] is None
    import onnxruntime as ort

    session = ort.InferenceSession(str(run / "model.onnx"))
    names = [session.get_inputs()[0].name, session.get_outputs()[0].name]
    assert names == ["rows", "predictions"]  # a table model's graph says what goes in and out
    out = session.run(["predictions"], {"rows": x.numpy()})[0]
    resumed_model = load_inference_model(run, torch.device("cpu"))
    assert np.allclose(out[:, 0], resumed_model.logits(x)[:, 0].numpy(), rtol=1e-4, atol=1e-3)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_csv_with_text_columns_ids_missing_values_and_its_own_test_file(tmp_path):
    rng = np.random.default_rng(0)
    header = "id,size,colour,price\n"
    sizes, colours = rng.uniform(0, 5, 300), rng.choice(["red", "blue"], 300)
    rows = [f"{i},{s:.3f},{c},{3 * s + (2 if c == 'red' else 0) + rng.normal(0, 0.1):.3f}"
            for i, s, c in zip(range(300), sizes, colours, strict=True)]  # fmt: skip
    rows[7] = "7,,red,3.0"  # a gap in a feature column
    write(tmp_path / "train.csv", header + "\n".join(rows[:240]) + "\n")
    write(tmp_path / "test.csv", header + "\n".join(rows[240:]) + "\n")
    refused = run_main("train", "--data", tmp_path / "train.csv", "--target", "price", "--model", "linear",
                       "--out", tmp_path / "runs")  # fmt: skip
    assert refused.returncode == 2 and "missing values in size (1)" in refused.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written
    ok = run_main("train", "--data", tmp_path / "train.csv", "--target", "price", "--model", "linear",
                  "--drop", "id", "--fill", "median", "--epochs", "40", "--lr", "0.01",
                  "--out", tmp_path / "runs", "--name", "t")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (
        "216 train / 24 val (10% of the training split, seed 0) / 60 test" in ok.stdout
        and "3 features from 2 columns" in ok.stdout
    )
    model = load_inference_model(tmp_path / "runs" / "t", torch.device("cpu"))
    assert model.table["features"] == ["size", "colour=blue", "colour=red"]
    assert json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())["final_test_r2"] > 0.95
    new = write(tmp_path / "new.csv", "size,colour\n1.0,red\n1.0,green\n")
    answer = run_main("predict", tmp_path / "runs" / "t", new, "--json")
    red, green = (r["price"] for r in json.loads(answer.stdout))
    assert red == pytest.approx(5.0, abs=0.5) and green < red  # unseen: no colour bonus


BAD_TABLES = {
    "no_target": ("a,b\n1,2\n3,4\n", "no column 'y'; its columns: a, b"),
    "empty": ("", "empty file"),
    "ragged": ("a,y\n1,2\n3,4,5\n", "line 3: 3 fields where the header has 2"),
    "not_a_number": ("a,y\n" + "".join(f"{i},{i}\n" for i in range(30)) + "x,3\n", "row 31, column 'a'"),
    "constant": ("a,y\n1,5.5\n2,5.5\n3,5.5\n", "is constant"),
    "one_class": ("a,y\n1,cat\n2,cat\n", "has one class"),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_bad_tables_exit_with_their_reason_and_write_nothing(tmp_path, case):
    text, fragment = BAD_TABLES[case]
    path = write(tmp_path / "t.csv", text)
    result = run_main(
        "train", "--data", path, "--target", "y", "--model", "linear", "--out", tmp_path / "runs"
    )
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_bom_quotes_and_semicolons_are_read(tmp_path):
    rows = "".join(f'{i};"{i % 3},5";{2 * i}\n' for i in range(40))
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"a;label;y\n{rows}".encode())
    result = run_main("train", "--data", path, "--target", "y", "--model", "linear", "--epochs", "1",
                      "--out", tmp_path / "runs")  # fmt: skip
    assert result.returncode == 0, result.stderr
    # A ;-separated file writing decimals with commas: "0,5" is the number 0.5 (it was read as text,
    # three one-hot columns, before the column rule); --decimal . says the commas are no decimals.
    assert "2 features from 2 columns" in result.stdout
    result = run_main("train", "--data", path, "--target", "y", "--model", "linear", "--epochs", "1",
                      "--decimal", ".", "--out", tmp_path / "runs")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 features from 2 columns" in result.stdout  # a, and label one-hot: "0,5", "1,5", "2,5"


def test_a_table_refuses_image_models_and_says_so_before_reading(tmp_path):
    result = run_main("train", "--data", "iris", "--model", "tinyvgg", "--out", tmp_path)
    assert result.returncode == 2 and "--model linear or mlp" in result.stderr
    result = run_main(
        "train", "--data", "diabetes", "--model", "mlp", "--loss", "cross_entropy", "--out", tmp_path
    )
    assert result.returncode == 2 and "not a regression loss" in result.stderr
    result = run_main("train", "--data", "t.csv", "--model", "mlp", "--loss", "hinge", "--out", tmp_path)
    assert result.returncode == 2 and "unknown loss 'hinge'" in result.stderr


def test_data_list_summary_and_compare_know_tables(tmp_path):
    listed = run_main("data", "list")
    assert all(name in listed.stdout for name in ("diabetes", "breast-cancer", "synthetic-regression"))
    summary = run_main("summary", "--data", "diabetes", "--model", "mlp")
    assert summary.returncode == 0 and "input (10,) (F)," in summary.stdout
    pytest.importorskip("sklearn")
    compared = run_main("compare", "--data", "diabetes", "--model", "linear", "--epochs", "5",
                        "--vary", "train.lr=0.01,0.001", "--seeds", "2", "--baselines", "linear,ridge",
                        "--out", tmp_path / "report")  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "test R² (mean ± std)" in compared.stdout and "linear (scikit-learn)" in compared.stdout
    assert "r2_mean" in (tmp_path / "report" / "summary.csv").read_text().splitlines()[0]


@pytest.mark.skipif(not (SHARED_DATA / "tables" / "diamonds.csv").is_file(), reason="needs ../shared/data")
def test_diamonds_from_the_data_folder(tmp_path):
    result = run_main("train", "--data", "diamonds", "--data-dir", SHARED_DATA, "--model", "mlp",
                      "--epochs", "2", "--batch-size", "256", "--out", tmp_path, "--name", "d")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "38837 train / 4315 val" in result.stdout
        and "/ 10788 test" in result.stdout
        and "26 features from 9 columns" in result.stdout
    )
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["final_test_r2"] > 0.9


def test_image_commands_refuse_a_table_model_by_name(tmp_path):
    trained = run_main("train", "--data", "iris", "--model", "linear", "--epochs", "1", "--out", tmp_path,
                       "--name", "t")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "x.png")
    assert run_main("export", tmp_path / "t", "--format", "onnx").returncode == 0
    for run in (tmp_path / "t", tmp_path / "t" / "model.onnx"):
        refused = run_main("predict", run, tmp_path / "x.png")
        assert refused.returncode == 2 and "was trained on a table" in refused.stderr
    from tocha.errors import TochaError
    from tocha.serve.predictor import load_predictor

    with pytest.raises(TochaError, match="was trained on a table"):
        load_predictor(tmp_path / "t")


def test_the_python_api_predicts_rows_of_a_csv_or_an_array(tmp_path):
    import tocha

    config = table_config(tmp_path, data={"name": "diabetes"}, model={"name": "linear"}, train={"epochs": 2})
    run = tocha.train(config, log=lambda _line: None).run_dir
    lines = (TABLES_DIR / "diabetes.csv").read_text().splitlines()
    rows = write(tmp_path / "rows.csv", "\n".join(line.rsplit(",", 1)[0] for line in lines[:4]) + "\n")
    model = tocha.load(run)
    from_file = [r["progression"] for r in model.predict(rows)]
    array = np.array([[float(v) for v in line.split(",")[:-1]] for line in lines[1:4]])
    assert [r["progression"] for r in model.predict(array)] == pytest.approx(from_file)
    from tocha.errors import TochaError

    with pytest.raises(TochaError, match=r"expected encoded rows \(N, 10\)"):
        model.predict(array[:, :3])


def test_evaluating_rows_of_one_class_is_fine(tmp_path):
    """One class is nothing to learn, but rows of one class are something to score: `evaluate
    --data` of such a file reports on them (the training check is not applied)."""
    run = tmp_path / "runs" / "iris"
    assert run_main("train", "--data", "iris", "--epochs", "2", "--out", tmp_path / "runs", "--name",
                    "iris").returncode == 0  # fmt: skip
    setosa = tmp_path / "setosa.csv"
    lines = (TABLES_DIR / "iris.csv").read_text().splitlines()
    setosa.write_text("\n".join([lines[0], *[line for line in lines[1:] if line.endswith("setosa")]]) + "\n")
    result = run_main("evaluate", run, "--data", setosa, "--out", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["samples"] == 50 and [r["support"] for r in report["per_class"]] == [50, 0, 0]
    assert f"{setosa} every row: 50 samples" in result.stdout and report["split"] == "every row"


def test_predictions_are_safe_to_open_and_never_not_numbers(tmp_path):
    """CSV through the csv module (names with a comma or a newline stay one cell), formula-leading
    names led by a quote, strict JSON; rows with numbers a model cannot take refused naming the row
    and column."""
    names = ["plain", "a, comma", "two\nlines", '=HYPERLINK("http://x")']
    data = tmp_path / "t.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(
            [["a", "b", "kind"], *([i % 10, (i * 7) % 10, names[i % 4]] for i in range(80))]
        )
    assert run_main("train", "--data", data, "--target", "kind", "--epochs", "1", "--out", tmp_path / "runs",
                    "--name", "r").returncode == 0  # fmt: skip
    new = tmp_path / "new.csv"
    new.write_text("a,b\n" + "".join(f"{i},{9 - i}\n" for i in range(10)))
    printed = run_main("predict", tmp_path / "runs" / "r", new)
    assert printed.returncode == 0, printed.stderr
    parsed = list(csv.reader(printed.stdout.splitlines(keepends=True)))
    assert parsed[0] == ["row", "predicted", "probability"] and len(parsed) == 11
    predicted = {row[1] for row in parsed[1:]}
    assert predicted <= {"plain", "a, comma", "two\nlines", '\'=HYPERLINK("http://x")'}, predicted
    assert json.loads(run_main("predict", tmp_path / "runs" / "r", new, "--json").stdout)[0]["row"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\ninf,3\n")
    refused = run_main("predict", tmp_path / "runs" / "r", bad)
    assert refused.returncode == 2 and "row 2, column 'a'" in refused.stderr, refused.stderr


def test_regression_answers_that_overflow_are_null_in_json(tmp_path):
    rows = "".join(f"{i * 1e-3:.4f},{i % 3},{i * 0.5}\n" for i in range(60))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows)
    trained = run_main("train", "--data", tmp_path / "t.csv", "--target", "y", "--model", "linear",
                       "--epochs", "1", "--out", tmp_path / "runs", "--name", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "huge.csv").write_text("a,b\n3.3e38,1\n0.01,2\n")
    printed = run_main("predict", tmp_path / "runs" / "r", tmp_path / "huge.csv", "--json")
    assert printed.returncode == 0, printed.stderr
    values = [row["y"] for row in json.loads(printed.stdout)]  # strict JSON: parsed by the standard
    assert values[0] is None and isinstance(values[1], float)


def test_no_standardize_learns_a_linear_model_in_the_columns_own_units(tmp_path):
    """synthetic-linear is y = X @ w + 0.5 + noise, w = linspace(-1, 1, 10): with --no-standardize the
    notes' SimpleLinearModel learns w and 0.5 themselves, not their standardised images."""
    from torch import nn

    import tocha
    from tocha.data.table_set import linear_truth

    class SimpleLinearModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(10, 1)

        def forward(self, x):
            return self.linear(x)

    options = {"epochs": 60, "lr": 0.05, "optimizer": "adam", "progress": False, "log": lambda _line: None}
    run = tocha.train(data="synthetic-linear", model=SimpleLinearModel, standardize=False,
                      out_dir=str(tmp_path), **options)  # fmt: skip
    assert torch.allclose(run.model.linear.weight.flatten(), linear_truth(), atol=0.05)
    assert abs(float(run.model.linear.bias.detach()) - 0.5) < 0.05 and run.final.r2 > 0.99
    answers = tocha.load(run.run_dir, model=SimpleLinearModel).answers(torch.ones(1, 10))
    assert answers[0] == pytest.approx(float(linear_truth().sum()) + 0.5, abs=0.1)  # in the target's units
