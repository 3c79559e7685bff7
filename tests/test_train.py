"""End-to-end training on the bundled samples: run folder contents, accuracy, determinism."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml
from trained_runs import train_quick

from tocha.config import load_config
from tocha.runs.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`tocha train` defaults on the bundled Fashion-MNIST sample (no full data in the test env)."""
    return train_quick(tmp_path_factory.mktemp("runs"))


def test_default_run_uses_bundled_sample_and_learns(default_run):
    assert default_run.config.data.name == "fashion-mnist-sample"
    assert "bundled" in default_run.data.source
    # Two epochs of TinyVGG on 6000 images: well above the 10% of chance (measured ~79%).
    assert default_run.final.accuracy >= 0.70


def test_run_folder_holds_every_record(default_run):
    run = default_run.run_dir
    for name in (
        "config.yaml",
        "metrics.csv",
        "checkpoint.pt",
        "curves.png",
        "confusion_matrix.png",
        "summary.json",
    ):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    for png in ("curves.png", "confusion_matrix.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert "test_accuracy" not in rows[0] and 0 < float(rows[-1]["val_accuracy"]) <= 1  # chosen on validation
    summary = json.loads((run / "summary.json").read_text())
    assert summary["selection"] == "val_accuracy" and summary["kept_epoch"] in (1, 2)
    assert summary["dataset"] == "fashion-mnist-sample"
    assert summary["final_test_accuracy"] == pytest.approx(default_run.final.accuracy)
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]  # no temp files left


def test_resolved_config_is_recorded_everywhere(default_run):
    run = default_run.run_dir
    saved = load_config(run / "config.yaml")
    assert saved == default_run.config
    assert saved.data.mean is not None and saved.model.args["log_softmax"] is False  # defaults resolved
    ckpt = load_checkpoint(run)
    assert ckpt["config"] == yaml.safe_load((run / "config.yaml").read_text())
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert set(ckpt) >= {"model", "optimizer", "config", "classes", "normalization", "image_shape"}


def test_normalisation_comes_from_training_statistics(default_run):
    images = default_run.data.train.images.double() / 255
    assert default_run.config.data.mean[0] == pytest.approx(images.mean().item(), abs=1e-9)
    assert default_run.config.data.std[0] == pytest.approx(images.std(unbiased=False).item(), abs=1e-9)


def test_same_seed_same_weights(tmp_path):
    kwargs = dict(model__name="mlp", data__name="mnist-sample", train__epochs=1, train__seed=3)
    a = train_quick(tmp_path / "a", **kwargs)
    b = train_quick(tmp_path / "b", **kwargs)
    c = train_quick(tmp_path / "c", **{**kwargs, "train__seed": 4})
    wa, wb, wc = (load_checkpoint(r.run_dir)["model"] for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_nll_with_log_softmax_head_matches_the_notebook_setup(tmp_path):
    """The EstudoCaso1 notebook's MLP: 784-128-64-10, ReLU, log-softmax + NLLLoss, SGD 0.003/0.9."""
    result = train_quick(
        tmp_path,
        data__name="mnist-sample",
        model__name="mlp",
        model__hidden_sizes=[128, 64],
        train__loss="nll",
        train__optimizer="sgd",
        train__lr=0.003,
        train__momentum=0.9,
        train__epochs=4,
    )
    assert result.config.model.args["log_softmax"] is True
    assert result.final.accuracy >= 0.82  # 250 small SGD steps on 4000 digits


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_trains(tmp_path, optimizer):
    lr = 0.05 if optimizer == "sgd" else 0.002
    result = train_quick(
        tmp_path,
        data__name="mnist-sample",
        model__name="linear",
        train__optimizer=optimizer,
        train__lr=lr,
        train__epochs=1,
        train__batch_size=128,
        train__nesterov=optimizer == "sgd",
        train__momentum=0.9 if optimizer == "sgd" else 0.0,  # Nesterov needs momentum (SGD's default is 0)
    )
    assert result.final.accuracy >= 0.75


def test_label_smoothing_and_mse_losses_train(tmp_path):
    smooth = train_quick(
        tmp_path / "s",
        data__name="mnist-sample",
        model__name="linear",
        train__epochs=1,
        train__label_smoothing=0.1,
    )
    mse = train_quick(
        tmp_path / "m",
        data__name="mnist-sample",
        model__name="linear",
        train__epochs=2,
        train__loss="mse",
        train__lr=0.01,
    )
    assert smooth.final.accuracy >= 0.75 and mse.final.accuracy >= 0.6


def test_divergence_stops_the_run_and_names_epoch_and_step(tmp_path):
    from tocha.errors import DivergedError

    with pytest.raises(DivergedError) as error:
        train_quick(tmp_path, data__name="mnist-sample", model__name="mlp", train__optimizer="sgd",
                    train__lr=1000.0, train__epochs=2)  # fmt: skip
    assert error.value.epoch == 1 and error.value.step >= 1
    assert f"epoch 1, step {error.value.step}" in str(error.value) and "smaller learning rate" in str(
        error.value
    )
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "cache"]
    assert not (run_dir / "checkpoint.pt").exists()  # NaN weights are never saved


def test_first_nonfinite_step_is_found_without_syncing_each_step():
    import torch
    from helpers import one_epoch

    from tocha.data.normalize import Normalize
    from tocha.data.tensorset import TensorSet
    from tocha.models import create_model

    data = TensorSet(torch.randint(0, 256, (64, 1, 4, 4), dtype=torch.uint8), torch.randint(0, 3, (64,)))
    model = create_model("linear", (1, 4, 4), 3)
    calls = []

    def loss_fn(out, y):  # finite for 3 steps, then infinite: the step must be 4
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("inf") if len(calls) >= 4 else loss

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = one_epoch(model, data, loss_fn=loss_fn, optimizer=opt, preprocess=Normalize([0.5], [0.5]),
                             batch_size=8, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert result.first_nonfinite_step == 4
