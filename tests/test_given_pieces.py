"""PyTorch's own loss modules and optimizer factories from Python (`training.pieces`): taken, recorded
as what they are, the same weights as tocha's own pieces where they compute the same, resumed
exactly, held to their record; and `--monitor val_f1`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import REPO, run_main
from torch import nn

import tocha
from tocha.errors import TochaError

SMALL = {"data": "mnist-sample", "model": "mlp", "hidden_sizes": [32], "train_limit": 600, "progress": False}


def quiet(_line: str) -> None:
    pass


def weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run.run_dir / "checkpoint.pt", weights_only=True)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def sgd(params):  # a factory defined at the top: SGD as tocha's own `--optimizer sgd` builds it
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, fused=True)


def test_a_loss_module_and_an_optimizer_factory_train_as_tocha_own_and_are_recorded(tmp_path):
    lines: list[str] = []
    given = tocha.train(**SMALL, epochs=2, out_dir=str(tmp_path / "given"), log=lines.append,
                        loss=nn.CrossEntropyLoss(label_smoothing=0.1), optimizer=sgd)  # fmt: skip
    named = tocha.train(**SMALL, epochs=2, out_dir=str(tmp_path / "named"), log=quiet, loss="cross_entropy",
                        label_smoothing=0.1, optimizer="sgd", lr=0.05, momentum=0.9)  # fmt: skip
    assert same(weights(given), weights(named))  # PyTorch's module computes what tocha's own loss does
    recorded = yaml.safe_load((given.run_dir / "config.yaml").read_text())["train"]
    assert recorded["loss"] == "python:CrossEntropyLoss" and "label_smoothing=0.1" in recorded["loss_given"]
    assert recorded["optimizer"] == "python:SGD" and "momentum=0.9" in recorded["optimizer_given"]
    assert recorded["lr"] == 0.05 and recorded["weight_decay"] == 0.0  # the factory's own, recorded
    assert any(line.startswith("given in Python: loss CrossEntropyLoss(") for line in lines)
    assert tocha.evaluate(given).evaluation.loss == pytest.approx(given.final.loss)  # the run has its loss


def test_a_resume_with_the_same_pieces_is_exact_and_other_pieces_are_refused(tmp_path):
    pieces = {"loss": lambda out, y: nn.functional.cross_entropy(out, y, label_smoothing=0.05),
              "optimizer": lambda p: torch.optim.RMSprop(p, lr=1e-3)}  # fmt: skip
    straight = tocha.train(**SMALL, epochs=2, out_dir=str(tmp_path / "a"), log=quiet, **pieces)
    first = tocha.train(**SMALL, epochs=1, out_dir=str(tmp_path / "b"), log=quiet, **pieces)
    with pytest.raises(TochaError, match=r"optimizer= gives RMSprop\(.*lr=0\.01.*the run was trained with"):
        tocha.resume(first.run_dir, epochs=2, log=quiet, loss=pieces["loss"],
                     optimizer=lambda p: torch.optim.RMSprop(p, lr=1e-2))  # fmt: skip
    with pytest.raises(TochaError, match="this run's loss was given in Python .*tocha.resume"):
        tocha.resume(first.run_dir, epochs=2, log=quiet, optimizer=pieces["optimizer"])
    resumed = tocha.resume(first.run_dir, epochs=2, log=quiet, **pieces)  # its RMSprop state restored
    assert same(weights(resumed), weights(straight))
    assert tocha.resume(resumed, epochs=3, log=quiet).config.train.epochs == 3  # the run returned has them
    cli = run_main("train", "--resume", first.run_dir, "--epochs", "4")
    assert cli.returncode == 2 and "was given in Python (python:lambda" in cli.stderr
    evaluated = run_main("evaluate", first.run_dir, "--out", tmp_path / "eval")
    assert evaluated.returncode == 0 and "loss nan" in evaluated.stdout
    assert "the loss is not scored (nan); tocha.evaluate(run, loss=...)" in evaluated.stdout


def test_a_regression_loss_module_gets_targets_shaped_as_the_outputs(tmp_path):
    run = tocha.train(data="synthetic-regression", model="linear", epochs=2, out_dir=str(tmp_path), log=quiet,
                      progress=False, loss=nn.MSELoss())  # fmt: skip
    named = tocha.train(data="synthetic-regression", model="linear", epochs=2, out_dir=str(tmp_path),
                        log=quiet, progress=False, loss="mse")  # fmt: skip
    assert same(weights(run), weights(named))  # not a (B, B) broadcast: the same mean squared error


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss": nn.CrossEntropyLoss(reduction="sum")}, r"reduction='sum'.*give reduction='mean'"),
        ({"loss": nn.CrossEntropyLoss}, r"is a class: give an instance, CrossEntropyLoss\(\)"),
        ({"loss": lambda out, y: (out - 0).sum(1)}, r"one number with a gradient; it returned shape \(2,\)"),
        ({"loss": 3}, "loss must be a name, an nn.Module or a function"),
        ({"optimizer": lambda p: "adam"}, "optimizer= must return a torch.optim.Optimizer, not str"),
        ({"optimizer": lambda p: 1 / 0}, "optimizer= raised ZeroDivisionError"),
        ({"loss": nn.NLLLoss(), "train.loss": "mse"}, "given twice, as an object and as a name"),
    ],
    ids=["sum", "class", "per-sample", "number", "not-optimizer", "raises", "both"],
)
def test_pieces_that_cannot_train_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(TochaError, match=message):
        tocha.train(**SMALL, epochs=1, out_dir=str(tmp_path), log=quiet, **options)
    assert not any(tmp_path.iterdir())


def test_monitor_val_f1_keeps_the_epoch_of_the_best_macro_f1(tmp_path):
    run = tocha.train(**SMALL, epochs=3, lr=0.05, monitor="val_f1", out_dir=str(tmp_path), log=quiet)
    f1 = [row["val_f1"] for row in run.history]
    assert all(0 <= v <= 1 for v in f1) and "train_f1" not in run.history[0]
    summary = yaml.safe_load((run.run_dir / "summary.json").read_text())
    assert summary["kept_epoch"] == 1 + f1.index(max(f1))
    header = (run.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val_f1" in header and "train_f1" not in header
    assert run.final.f1 == pytest.approx(run.final.macro_f1)
    with pytest.raises(TochaError, match="validation metrics are val_loss, .*val_r2$"):
        tocha.train(data="synthetic-regression", model="linear", epochs=1, monitor="val_f1", log=quiet,
                    out_dir=str(tmp_path))  # fmt: skip


def test_the_guide_block_runs_as_printed(tmp_path):
    guide = (REPO / "docs" / "guide" / "python.md").read_text()
    block = guide.split("## PyTorch's own loss and optimizer", 1)[1]
    code, printed = re.findall(r"```(?:python|text)\n(.*?)```", block, flags=re.S)[:2]
    env = {**os.environ, "TOCHA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    shown = printed.splitlines()
    assert shown[1] in lines and lines[-1] == shown[-1]  # the given line and the record, as printed
    assert "epoch 3/3" in done.stdout and (tmp_path / "runs" / "pieces" / "checkpoint.pt").is_file()
