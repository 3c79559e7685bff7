"""A run folder tells the whole truth: config.yaml names every model option with the value used, so
the model is rebuilt from config.yaml and the weights alone; evaluation.json keeps every printed figure."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from helpers import run_main
from torch import nn

from tocha.models import get_factory, model_options
from tocha.runs.checkpoint import read_checkpoint

MODELS = {"linear": [], "mlp": [], "tinyvgg": ["--hidden-units", "4"], "resnet": ["--widths", "4,8,8,8"]}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_option_is_recorded_with_the_value_used(tmp_path, name):
    result = run_main("train", "--data", "mnist-sample", "--model", name, *MODELS[name], "--epochs", "1",
                      "--train-limit", "256", "--out", tmp_path, "--name", "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    recorded = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["model"]
    options = recorded["args"]  # the model's own options: those it takes, no other model's
    assert sorted(options) == sorted(model_options(name)), options
    assert all(v is not None for v in options.values()), options  # nothing left to tocha's defaults
    # Every option given explicitly: the factory's defaults play no part in the rebuild.
    rebuilt = get_factory(name)(in_shape=(1, 28, 28), num_classes=10, **options)
    ckpt = read_checkpoint(tmp_path / "r")
    rebuilt.load_state_dict(ckpt.weights)
    assert ckpt.config["model"] == recorded


def test_an_mlp_rebuilt_in_plain_pytorch_from_config_yaml_alone(tmp_path):
    result = run_main("train", "--data", "mnist-sample", "--model", "mlp", "--activation", "leaky_relu",
                      "--epochs", "1", "--train-limit", "256", "--out", tmp_path, "--name", "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    sizes, activation = config["model"]["args"]["hidden_sizes"], config["model"]["args"]["activation"]
    assert sizes == [128, 64] and activation == "leaky_relu"
    layers, width = [nn.Flatten()], 784
    for size in sizes:
        layers += [nn.Linear(width, size), {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}[activation]()]
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    ckpt = read_checkpoint(tmp_path / "r")
    model.load_state_dict(ckpt.weights)
    x = torch.rand(4, 1, 28, 28)
    mean, std = config["data"]["mean"][0], config["data"]["std"][0]
    import tocha

    expected = tocha.load(tmp_path / "r")((x * 255).round().to(torch.uint8))
    got = model(((x * 255).round() / 255 - mean) / std)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_evaluation_json_keeps_every_printed_figure(tmp_path):
    result = run_main(
        "train", "--data", "iris", "--model", "linear", "--epochs", "3", "--out", tmp_path, "--name", "r"
    )
    assert result.returncode == 0, result.stderr
    printed = run_main("evaluate", tmp_path / "r")
    report = json.loads((tmp_path / "r" / "eval-iris" / "evaluation.json").read_text())
    macro = float(printed.stdout.split("macro avg F1")[1].split()[0])
    assert math.isclose(report["macro_f1"], macro, abs_tol=1e-4)
    for row in report["per_class"]:
        assert f"{row['f1']:.4f}" in printed.stdout


def test_a_comparison_without_vary_against_baselines_with_their_times_and_warnings(tmp_path):
    pytest.importorskip("sklearn")
    result = run_main("compare", "--data", "mnist-sample", "--model", "linear", "--epochs", "1",
                      "--seeds", "1", "--baselines", "knn,logreg", "--out", tmp_path / "report")  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "report" / "table.md").read_text()
    assert "| base |" in table
    knn = next(line for line in table.splitlines() if line.startswith("| knn"))
    assert " fit + " in knn and " predict" in knn
    stored = json.loads((tmp_path / "report" / "baselines.json").read_text())
    assert stored["knn"]["predict_seconds"] > 0
    logreg = next(line for line in table.splitlines() if line.startswith("| logreg"))
    for note in stored["logreg"]["notes"]:  # lbfgs's "failed to converge", when it says so
        assert note in logreg


def test_evaluate_on_a_dataset_with_other_class_names_says_so(tmp_path):
    result = run_main("train", "--data", "fashion-mnist-sample", "--model", "linear", "--epochs", "1",
                      "--train-limit", "256", "--out", tmp_path, "--name", "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    refused = run_main("evaluate", tmp_path / "r", "--data", "mnist-sample")
    assert refused.returncode == 2 and "are not the model's (T-shirt/top" in refused.stderr
    assert "--allow-other-classes" in refused.stderr and not (tmp_path / "r" / "eval-mnist-sample").exists()
    allowed = run_main("evaluate", tmp_path / "r", "--data", "mnist-sample", "--allow-other-classes")
    assert allowed.returncode == 0, allowed.stderr


def test_a_run_name_taken_by_another_run_gets_a_suffix_and_says_so(tmp_path):
    import tocha

    x, y = torch.randn(60, 3), torch.arange(60) % 2
    options = {"data": (x, y), "model": "linear", "epochs": 1, "out_dir": str(tmp_path), "run_name": "first",
               "progress": False}  # fmt: skip
    lines: list[str] = []
    tocha.train(log=lines.append, **options)
    assert not any(line.startswith("note: ") and "exists" in line for line in lines)
    again = tocha.train(log=lines.append, **options)
    assert again.run_dir == tmp_path / "first-2"
    assert (
        f"note: {tmp_path / 'first'} exists (another run), so this one is {tmp_path / 'first-2'}"
        in "\n".join(lines)
    )


def test_a_module_object_trains_from_its_own_weights_and_the_run_says_and_records_it(tmp_path):
    import tocha

    x, y = torch.randn(60, 3), torch.arange(60) % 2
    lines: list[str] = []
    common = {"data": (x, y), "epochs": 1, "out_dir": str(tmp_path), "progress": False}
    given = tocha.train(model=nn.Linear(3, 2), log=lines.append, **common)
    assert any(line.startswith("note: model= is a module built already") for line in lines)
    assert json.loads((given.run_dir / "summary.json").read_text())["initial_weights"] == "given"
    lines.clear()

    def two() -> nn.Module:  # built under the run's seed
        return nn.Linear(3, 2)

    seeded = tocha.train(model=two, log=lines.append, **common)
    assert not any("module built already" in line for line in lines)
    assert json.loads((seeded.run_dir / "summary.json").read_text())["initial_weights"] == "seeded"
