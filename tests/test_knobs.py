"""The training knobs peers have: gradient accumulation (the same step as a batch N times larger),
gradient clipping (its norms recorded), class weights (the loss weighted, the counts said), and
Lightning's two sanity runs (`--fast-dev-run`, `--overfit-batches`)."""

from __future__ import annotations

import csv

import pytest
import torch
from helpers import run_main, stopped_after_epoch_one_then_resumed, write_image_folder
from test_prepare import trained_weights
from torch import nn
from torch.nn import functional as F

from tocha.config import RunConfig, set_value
from tocha.data.batches import device_batches, shuffled_order
from tocha.data.tensorset import TensorSet
from tocha.runs.checkpoint import load_checkpoint
from tocha.tasks import ClassificationTask, make_task
from tocha.training import train
from tocha.training.loop import Optimization, train_one_epoch
from tocha.training.tally import EpochTally


def test_accumulating_n_parts_is_one_batch_n_times_larger(tmp_path):
    """fp32, no batch norm: 4 parts of 16 make the step a batch of 64 makes, to float rounding."""
    common = {"train.optimizer": "sgd", "train.lr": 0.1, "model.hidden_sizes": [32]}
    in_parts = {"train.batch_size": 16, "train.accumulate": 4, **common}
    parts = trained_weights(tmp_path, "mnist-sample", "parts", **in_parts)
    whole = trained_weights(tmp_path, "mnist-sample", "whole", **{"train.batch_size": 64, **common})
    assert max((parts[k] - whole[k]).abs().max().item() for k in whole) < 1e-6
    assert any(not torch.equal(parts[k], whole[k]) for k in whole)  # summed in another order: not bit-equal


def one_step(clip: float | None) -> tuple[float, float, EpochTally]:
    """A linear model's one SGD step (rate 1) on one batch: the update's norm and the gradient's."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    data = TensorSet(torch.randn(8, 6, 1, 1) * 10, torch.randint(0, 3, (8,)))
    order = torch.arange(8)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    loss = F.cross_entropy(model(data.images.flatten(1)), data.labels)
    norm = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))]).norm().item()
    task = ClassificationTask()
    tally = EpochTally.begin(task, order)
    opt = Optimization(torch.optim.SGD(model.parameters(), lr=1.0), clip_grad_norm=clip)
    train_one_epoch(model, device_batches(data, order, 8, lambda x: x.flatten(1)), task, opt, tally=tally)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return (after - before).norm().item(), norm, tally


def test_clipping_cuts_the_step_to_the_norm_and_records_the_norm_before():
    free, norm, _ = one_step(None)
    assert free == pytest.approx(norm, rel=1e-5) and norm > 0.5  # a step of rate 1 moves by the gradient
    clipped, _, tally = one_step(0.5)
    assert clipped == pytest.approx(0.5, rel=1e-5)
    assert tally.metrics(8)["grad_norm_max"] == pytest.approx(norm, rel=1e-5)  # the norm before clipping


def test_clipped_norms_go_into_metrics_csv_and_survive_a_resume(tmp_path):
    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
        values = {"data.name": "mnist-sample", "model.name": "mlp", "train.epochs": 2, "train.threads": 1,
                  "train.clip_grad_norm": 0.5, "train.batch_size": 32}  # fmt: skip
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    straight = train(config("straight"), log=lambda _line: None, progress=False)
    with (straight.run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        assert 0 < float(row["train_grad_norm_mean"]) <= float(row["train_grad_norm_max"])
    resumed = stopped_after_epoch_one_then_resumed(config("stopped"))
    with (resumed.run_dir / "metrics.csv").open() as f:
        assert list(csv.DictReader(f)) != [] and resumed.history[-1]["train_grad_norm_max"] == pytest.approx(
            straight.history[-1]["train_grad_norm_max"], rel=1e-6)  # fmt: skip
    a, b = load_checkpoint(straight.run_dir)["model"], load_checkpoint(resumed.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_class_weights_weigh_the_loss_and_an_imbalance_is_said(tmp_path):
    out, y = torch.randn(12, 3), torch.randint(0, 3, (12,))
    weights = [1.0, 2.0, 5.0]
    weighted = make_task("classification", "cross_entropy", 0.0, None, class_weights=weights).loss(out, y)
    assert weighted.item() == pytest.approx(F.cross_entropy(out, y, weight=torch.tensor(weights)).item())
    nll = make_task("classification", "nll", 0.0, None, class_weights=weights).loss(out.log_softmax(1), y)
    assert nll.item() == pytest.approx(weighted.item())

    write_image_folder(tmp_path / "skewed", {"common": 60, "rare": 10}, size=(8, 8))
    done = run_main("train", "--data", tmp_path / "skewed", "--model", "linear", "--epochs", "1",
                    "--class-weights", "balanced", "--out", tmp_path / "runs")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "training samples per class: common 43, rare 7" in done.stdout  # after the test and val splits
    assert "warning: the classes are imbalanced: common has 43 training samples, rare 7 (6.1x)" in done.stdout
    recorded = next((tmp_path / "runs").iterdir()) / "config.yaml"
    assert f"class_weights: {50 / 86!r},{50 / 14!r}" in recorded.read_text()  # N / (K x count), as numbers

    refused = [
        (("--class-weights", "1,2,3"), "give balanced, or 2 weights above 0"),
        (("--class-weights", "1,-2"), "give balanced, or 2 weights above 0"),
        (("--class-weights", "balanced", "--loss", "mse"), "weigh the cross_entropy or nll loss"),
    ]
    for flags, message in refused:
        result = run_main("train", "--data", tmp_path / "skewed", "--model", "linear", "--epochs", "1",
                          *flags, "--out", tmp_path / "bad")  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "bad").exists()
    on_a_table = run_main(
        "train", "--data", "diabetes", "--class-weights", "balanced", "--out", tmp_path / "bad"
    )
    assert on_a_table.returncode == 2 and "not mse (regression)" in on_a_table.stderr


def test_the_block_order_reads_batches_of_one_rank_share(tmp_path):
    """`--shuffle blocks` and accumulation together: the same samples, the same steps."""
    order = shuffled_order(300, torch.Generator().manual_seed(1), torch.device("cpu"), blocks=True)
    data = TensorSet(torch.zeros(300, 1, 1, 1, dtype=torch.uint8), torch.arange(300))
    seen = torch.cat([b.y for b in device_batches(data, order, 64, lambda x: x)])
    assert torch.equal(seen, order)


def test_a_fast_dev_run_runs_each_part_once_and_writes_nothing(tmp_path):
    done = run_main("train", "--data", "mnist-sample", "--model", "tinyvgg", "--fast-dev-run", "--out",
                    tmp_path / "runs")  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("fast dev run: 1 training step (loss ") and "1 validation batch (accuracy" in line
    assert "1 test batch (accuracy" in line and line.endswith("nothing was written")
    assert not (tmp_path / "runs").exists()
    bad = tmp_path / "bad.py"
    bad.write_text("from torch import nn\n\n\nclass Bad(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        self.fc = nn.Linear(5, 10)\n\n"
                   "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")  # fmt: skip
    broken = run_main("train", "--data", "mnist-sample", "--model", f"{bad}:Bad", "--fast-dev-run", "--out",
                      tmp_path / "runs")  # images it cannot take: found at once  # fmt: skip
    assert broken.returncode == 2 and "Bad" in broken.stderr and not (tmp_path / "runs").exists()


def test_overfitting_a_few_batches_drives_them_to_the_bottom(tmp_path):
    done = run_main("train", "--data", "mnist-sample", "--model", "mlp", "--overfit-batches", "2", "--epochs",
                    "30", "--out", tmp_path / "runs")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "128 train / 128 val (the same 2 training batches (--overfit-batches))" in done.stdout
    run = next((tmp_path / "runs").iterdir())
    with (run / "metrics.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["train_accuracy"]) == 1.0 and float(last["val_loss"]) < 0.05


def test_bounds_and_words_that_no_longer_mislead(tmp_path):
    """`--accumulate 10000000` on 300 images (12.7 GB and 44 s before) is one line at once; a loss
    that is NaN on the first batch does not blame the rate; lr-find over 1e-300..1e300 says the
    range is too coarse; `--overfit-batches` says the batches there are; `--class-weights` states
    its bound."""
    import time

    import tocha
    from tocha.errors import DivergedError

    runs = tmp_path / "runs"
    started = time.monotonic()
    done = run_main("train", "--data", "mnist-sample", "--train-limit", "300", "--accumulate", "10000000",
                    "--out", runs)  # fmt: skip
    assert done.returncode == 2 and "at most --accumulate 5 (every sample in one step)" in done.stderr
    assert time.monotonic() - started < 20 and not runs.exists()

    class NotFinite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(28 * 28, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x.flatten(1)) / 0.0  # inf from the first batch, whatever the rate

    with pytest.raises(DivergedError, match="epoch 1, step 1, on the first batch, before any update") as e:
        tocha.train(model=NotFinite(), data="mnist-sample", epochs=1, out_dir=str(runs), log=lambda _: None)
    assert "smaller learning rate" not in str(e.value)

    done = run_main("lr-find", "--data", "mnist-sample", "--model", "linear", "--start-lr", "1e-300",
                    "--end-lr", "1e300", "--out", tmp_path / "lr")  # fmt: skip
    assert done.returncode == 2 and "spans 600 decades in 100 steps" in done.stderr
    assert "--steps 601" in done.stderr and not (tmp_path / "lr").exists()

    done = run_main("train", "--data", "mnist-sample", "--model", "linear", "--train-limit", "320",
                    "--overfit-batches", "100000", "--epochs", "1", "--out", runs)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "(the same 5 training batches (--overfit-batches, all there are of the 100000 asked))" in done.stdout
    )

    weights = ",".join(["1"] * 9 + ["2e6"])
    done = run_main("train", "--data", "mnist-sample", "--class-weights", weights, "--out", tmp_path / "w")
    assert done.returncode == 2 and "weights above 0 and below 1,000,000" in done.stderr
