"""Honest numbers: a validation split carved by a stated rule (or read from `val/`, `val.csv`), every
choice made on it (the kept weights, an early stop, a plateau's rate, compare's ranking), the test
split scored once; and no float64 tensor on the training device."""

from __future__ import annotations

import json
import math
import random
import signal

import numpy as np
import pytest
import torch
from helpers import run_main, write_image_folder
from test_resume import assert_same

import tocha
from tocha.config import RunConfig, set_value
from tocha.data.load import load_configured
from tocha.data.splits import carve
from tocha.errors import Interrupted, TochaError
from tocha.experiments.cells import CellResult, RunRecord
from tocha.experiments.report import summary_rows
from tocha.experiments.stats import holm, welch_p
from tocha.runs import RunSummary
from tocha.runs.checkpoint import load_checkpoint
from tocha.training import resume, train
from tocha.training.interrupt import StopRequest
from tocha.training.keeper import Keeper

QUIET = {"log": lambda _line: None, "progress": False}


def config(tmp_path, **values) -> RunConfig:
    cfg = RunConfig(out_dir=str(tmp_path))
    for key, value in values.items():
        set_value(cfg, key.replace("__", "."), value)
    return cfg


# -- the split
def test_the_carve_is_stratified_seeded_and_the_same_every_time():
    labels = np.repeat(np.arange(4), [50, 30, 17, 3])
    train_rows, val_rows = carve(labels, 0.2, 7, True, where="here")
    assert [int((labels[val_rows] == c).sum()) for c in range(4)] == [10, 6, 3, 1]  # round(0.2 n) per class
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(100))  # a partition
    again = carve(labels, 0.2, 7, True, where="here")
    assert np.array_equal(again[1], val_rows) and not np.array_equal(
        carve(labels, 0.2, 8, True, where="here")[1], val_rows
    )
    small = carve(np.array([0] * 50 + [1] * 2), 0.2, 0, True, where="here", names=["common", "rare"])[1]
    assert len(small) == 11  # round(0.4) = 0, but every class gives at least one: 10 + 1
    with pytest.raises(TochaError, match="class 'rare' has 1 training example: a validation split needs two"):
        carve(np.array([0] * 50 + [1]), 0.2, 0, True, where="here", names=["common", "rare"])
    plain = carve(np.random.default_rng(0).normal(size=90), 0.1, 0, False, where="here")[1]  # a regression's
    assert len(plain) == 9


def test_registered_images_and_tables_get_their_validation_rows(tmp_path):
    mnist = load_configured(config(tmp_path, data__name="mnist-sample").data)
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (3601, 399, 1000)
    counts = torch.bincount(mnist.val.labels, minlength=10)
    totals = counts + torch.bincount(mnist.train.labels, minlength=10)
    assert all(int(v) == round(0.1 * int(t)) for v, t in zip(counts, totals, strict=True))  # stratified
    assert mnist.val_source == "10% of the training split, stratified by class, seed 0"
    iris = load_configured(config(tmp_path, data__name="iris").data)
    assert len(iris.val) == 12 and len(iris.train) == 108 and len(iris.test) == 30
    none = load_configured(config(tmp_path, data__name="iris", data__val_fraction=0).data)
    assert none.val is None and len(none.train) == 120


def test_train_limit_trains_on_n_and_carves_the_validation_in_proportion(tmp_path):
    limited = load_configured(config(tmp_path, data__name="mnist-sample", data__train_limit=1000).data)
    assert len(limited.train) == 1000 and 105 <= len(limited.val) <= 121  # 10% of ~1,111, not of 4,000
    assert set(limited.val.labels.tolist()) == set(range(10))  # still stratified: every class on both sides
    rows = lambda split: {tuple(x) for x in split.images.flatten(1).tolist()}  # noqa: E731
    assert not rows(limited.train) & rows(limited.val)  # one seeded draw, split in two: no sample in both
    again = load_configured(config(tmp_path, data__name="mnist-sample", data__train_limit=1000).data)
    assert torch.equal(again.val.labels, limited.val.labels) and torch.equal(
        again.train.images, limited.train.images
    )
    iris = load_configured(config(tmp_path, data__name="iris", data__train_limit=45).data)
    assert len(iris.train) == 45 and 4 <= len(iris.val) <= 7  # a table's rows: the same rule
    with pytest.raises(
        TochaError, match="3900 training samples need 4334; mnist-sample has 4000: give at most"
    ):
        load_configured(config(tmp_path, data__name="mnist-sample", data__train_limit=3900).data)
    whole = load_configured(config(tmp_path, data__name="mnist-sample", data__train_limit=3000,
                                   data__val_fraction=0).data)  # fmt: skip
    assert len(whole.train) == 3000 and whole.val is None


def test_a_val_folder_and_a_val_csv_are_used_as_they_are(tmp_path):
    for split, count in (("train", 6), ("valid", 3), ("test", 2)):
        write_image_folder(tmp_path / "imgs" / split, {"cat": count, "dog": count}, seed=len(split))
    data = load_configured(config(tmp_path, data__name=str(tmp_path / "imgs")).data)
    assert (len(data.train), len(data.val), len(data.test)) == (
        12,
        6,
        4,
    ) and data.val_source == "its valid/ folder"
    folder = tmp_path / "table"
    folder.mkdir()
    rows = lambda n, seed: "".join(f"{x},{y}\n" for x, y in np.random.default_rng(seed).normal(size=(n, 2)))  # noqa: E731
    for name, n in (("train", 40), ("val", 10), ("test", 12)):
        (folder / f"{name}.csv").write_text("x,y\n" + rows(n, n))
    table = load_configured(config(tmp_path, data__name=str(folder / "train.csv"), data__target="y").data)
    assert (len(table.train), len(table.val), len(table.test)) == (
        40,
        10,
        12,
    ) and table.val_source == "val.csv"
    (folder / "val.csv").write_text("x,z\n1,2\n")
    with pytest.raises(TochaError, match="val.csv: its columns"):
        load_configured(config(tmp_path, data__name=str(folder / "train.csv"), data__target="y").data)


BAD = {
    "a fraction of 1": (["--val-fraction", "1"], "data.val_fraction' must be in [0, 1)"),
    "a class with one example": (["--data", "{folder}"], "class 'b' has 1 training example"),
    "keep best without validation": (
        ["--val-fraction", "0", "--keep", "best"],
        "--keep best: choices are made",
    ),
    "early stop without validation": (["--val-fraction", "0", "--early-stop", "2"], "--early-stop: choices"),
    "plateau without validation": (["--val-fraction", "0", "--schedule", "plateau"], "--schedule plateau"),
    "an unknown monitor": (
        ["--monitor", "val_r2"],
        "--monitor val_r2: a classification run's validation metrics are val_loss, val_accuracy",
    ),
    "an empty val folder": (["--data", "{split}"], "class folders [] differ"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_validation_settings_are_one_line_and_nothing_written(tmp_path, case):
    for split, count in (("train", 1), ("test", 1)):
        write_image_folder(tmp_path / "few" / split, {"a": 40, "b": count})
    for split in ("train", "test"):
        write_image_folder(tmp_path / "split" / split, {"a": 4, "b": 4})
    (tmp_path / "split" / "val").mkdir()
    args, said = BAD[case]
    args = [a.format(folder=tmp_path / "few", split=tmp_path / "split") for a in args]
    data = [] if "--data" in args else ["--data", "mnist-sample"]
    result = run_main("train", *data, *args, "--epochs", "1", "--out", tmp_path / "runs")
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


# -- choices made on validation
@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """A run whose validation accuracy peaks before its last epoch (a large rate on a small set)."""
    out = tmp_path_factory.mktemp("overfit")
    return train(config(out, **OVERFIT, train__test_every_epoch=True, run_name="run"), **QUIET)


# A large rate on 400 images: validation accuracy peaks before the last of 6 epochs.
OVERFIT = dict(data__name="mnist-sample", data__train_limit=400, model__name="mlp", model__hidden_sizes=[256],
               train__epochs=6, train__lr=0.01)  # fmt: skip


def test_the_kept_weights_are_the_best_epochs_and_evaluate_uses_them(overfit):
    summary = json.loads((overfit.run_dir / "summary.json").read_text())
    val = [row["val_accuracy"] for row in overfit.history]
    # The best value; of epochs that tie on it, the one with the lowest validation loss.
    best = max(range(len(val)), key=lambda i: (val[i], -overfit.history[i]["val_loss"])) + 1
    assert summary["kept_epoch"] == best and summary["selection"] == "val_accuracy"
    assert summary["val_accuracy"] == val[best - 1] and "best_test_accuracy" not in summary
    assert summary["final_test_accuracy"] == overfit.history[best - 1]["test_accuracy"]  # the kept epoch's
    evaluated = tocha.evaluate(overfit.run_dir, out_dir=overfit.run_dir / "eval-check")
    assert evaluated.evaluation.accuracy == summary["final_test_accuracy"]  # to the last digit
    model = tocha.load(overfit.run_dir)
    assert model.epoch == best
    if best != len(val):  # the kept weights are not the last ones
        saved = load_checkpoint(overfit.run_dir)
        assert not torch.equal(saved["selection"]["weights"]["1.weight"], saved["model"]["1.weight"])


def test_the_keeper_stops_at_the_right_epoch_on_a_scripted_sequence():
    keeper = Keeper("val_loss", higher=False, keep_best=True, min_delta=0.01, patience=2)
    stopped = []
    for epoch, loss in enumerate([1.0, 0.8, 0.795, 0.79, 0.85, 0.7], start=1):
        keeper.observe({"epoch": epoch, "val_loss": loss}, lambda e=epoch: {"w": torch.tensor([float(e)])})
        if keeper.should_stop(epoch):
            stopped.append(epoch)
            break
    # 0.795 and 0.79 improve on 0.8 by less than min_delta: no improvement after epoch 2, stop at 4.
    assert stopped == [4] and keeper.epoch == 2 and keeper.weights["w"].item() == 2.0
    replayed = Keeper("val_loss", higher=False, keep_best=True, min_delta=0.01, patience=2)
    replayed.restore(
        keeper.state_dict(), [{"epoch": e, "val_loss": v} for e, v in enumerate([1.0, 0.8, 0.795, 0.79], 1)]
    )
    assert (replayed.epoch, replayed.stopped_early, replayed.weights["w"].item()) == (2, 4, 2.0)


def test_early_stop_ends_a_real_run_and_says_why(tmp_path, overfit):
    lines: list[str] = []
    cfg = config(tmp_path, **OVERFIT, train__early_stop=1, run_name="es")
    result = train(cfg, log=lines.append, progress=False)
    val = [row["val_accuracy"] for row in overfit.history]  # the same run without the stop
    first_drop = next(i for i in range(1, len(val)) if val[i] <= max(val[:i])) + 1
    assert len(result.history) == first_drop  # stopped at the first epoch without improvement
    assert any(
        line.startswith(f"early stop after epoch {first_drop}: val_accuracy has not improved")
        for line in lines
    )
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["stopped_early"] == first_drop and load_checkpoint(result.run_dir)["finished"]
    with pytest.raises(TochaError, match="stopped early after epoch"):
        resume(result.run_dir, **QUIET)


def test_plateau_lowers_the_rate_when_validation_stalls():
    from tocha.training.schedules import make_plateau

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = make_plateau(optimizer, higher_is_better=True, factor=0.1, patience=1, min_delta=0.0)
    rates = []
    for value in [0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7]:
        plateau.step(value)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01])


def test_best_weights_early_stop_and_plateau_resume_bit_exactly(tmp_path):
    values = dict(
        data__name="mnist-sample",
        data__train_limit=600,
        data__augment_translate=1,
        model__name="mlp",
        model__hidden_sizes=[64],
        train__epochs=5,
        train__lr=0.05,
        train__optimizer="sgd",
        train__schedule="plateau",
        train__plateau_patience=0,
        train__early_stop=3,
    )
    straight = train(config(tmp_path, run_name="straight", **values), **QUIET)
    stop = StopRequest()

    def log(line: str) -> None:
        if line.startswith("epoch 2/"):
            stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted):
        train(config(tmp_path, run_name="stopped", **values), log=log, progress=False, stop=stop)
    resume(tmp_path / "stopped", **QUIET)
    assert_same(load_checkpoint(tmp_path / "stopped"), load_checkpoint(straight.run_dir))
    reduced = load_checkpoint(straight.run_dir)["optimizer"]["param_groups"][0]["lr"]
    assert reduced <= 0.05  # a plateau run records its rate


# -- compare chooses on validation
def record(seed: int, val: float, test: float) -> RunRecord:
    summary = RunSummary(
        dataset="d",
        data_source="",
        model="m",
        parameters=1,
        epochs=1,
        final_test={"accuracy": test, "loss": 0.5},
        val={"accuracy": val, "loss": 0.5},
        train_seconds=1.0,
        wall_seconds=1.0,
        device="cpu",
        classes=10,
        task="classification",
        selection="val_accuracy",
        kept_epoch=1,
    )
    return RunRecord(seed, None, summary, [{"epoch": 1, "samples_per_second": 1.0}])  # type: ignore[arg-type]


def test_compare_ranks_on_validation_when_validation_and_test_disagree():
    a = CellResult({"lr": 0.1}, [record(s, 0.90 + 0.01 * s, 0.80) for s in range(3)])  # best on validation
    b = CellResult({"lr": 0.01}, [record(s, 0.85 + 0.01 * s, 0.95) for s in range(3)])  # best on test
    rows = {row["cell"]: row for row in summary_rows([a, b])}
    assert rows["lr=0.1"]["verdict"] == "best" and rows["lr=0.1"]["chosen_on"] == "validation"
    p = welch_p([0.85, 0.86, 0.87], [0.90, 0.91, 0.92])
    assert rows["lr=0.01"]["p_value"] == pytest.approx(p) and rows["lr=0.01"]["verdict"].startswith("worse")


def test_welch_and_holm_against_scipy_and_a_reference():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    for _ in range(20):
        a = [rng.gauss(0.8, 0.02) for _ in range(rng.randint(2, 6))]
        b = [rng.gauss(0.81, 0.05) for _ in range(rng.randint(2, 6))]
        assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-7)
        assert welch_p(a, [0.79]) == pytest.approx(stats.ttest_1samp(a, 0.79).pvalue, rel=1e-7)
    assert math.isnan(welch_p([0.5], [0.6]))
    ps = [0.01, 0.04, 0.03, 0.005, float("nan")]
    reference = []  # Holm by its definition: p_(i) * (m - i + 1), made monotone, capped at 1
    order = sorted(range(4), key=lambda i: ps[i])
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * ps[i]))
        reference.append((i, running))
    adjusted = holm(ps)
    assert all(adjusted[i] == pytest.approx(v) for i, v in reference) and math.isnan(adjusted[4])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])


# -- no float64 on the training device
class NoFloat64(torch.utils._python_dispatch.TorchDispatchMode):
    """Fails on any float64 tensor an operation produces (Apple's MPS has none)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64:
                raise AssertionError(f"{func} made a float64 tensor")
        return out


@pytest.mark.parametrize("data", ["mnist-sample", "diabetes"])
def test_no_float64_tensor_in_training_validation_test_or_evaluate(tmp_path, data):
    from tocha.training.fit import epoch_scores, evaluate_split, train_epoch
    from tocha.training.setup import build_setup

    cfg = config(tmp_path, data__name=data, data__train_limit=300, model__name="mlp", train__epochs=1)
    s = build_setup(cfg, lambda _line: None)  # reading the data may use float64 (its statistics, on the CPU)
    with NoFloat64():
        tally = s.data.new_epoch(s.task)
        assert train_epoch(s, tally, StopRequest(), "epoch", show_bar=False) is not None
        epoch_scores(s)
        evaluate_split(s, s.data.test_set)
    run = train(
        config(tmp_path, data__name=data, data__train_limit=300, model__name="mlp", train__epochs=1), **QUIET
    )
    from tocha.inference.evaluate import evaluate_checkpoint

    with NoFloat64():
        evaluate_checkpoint(run.run_dir, device="cpu", out_dir=tmp_path / "eval")


def test_the_float64_guard_fails_on_a_planted_float64_sum():
    with pytest.raises(AssertionError, match="float64"), NoFloat64():
        (torch.ones(3) == torch.ones(3)).double().mean()


# -- the learning-rate finder
def test_lr_find_suggests_a_rate_writes_only_its_folder_and_leaves_no_run(tmp_path):
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = run_main("lr-find", "--data", "mnist-sample", "--model", "mlp", "--optimizer", "sgd",
                          "--out", tmp_path / "finder")  # fmt: skip
    finally:
        os.chdir(cwd)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "finder" / "lr_find.json").read_text())
    assert 1e-4 < record["suggested_lr"] < 1.0 and record["rule"].startswith(
        "the smaller of the steepest descent"
    )
    assert record["suggested_lr"] == min(record["steepest_lr"], record["minimum_lr_over_10"])
    assert record["safe_range"] == pytest.approx([record["suggested_lr"] / 3, record["suggested_lr"]])
    assert "trained in every case measured" in result.stdout
    assert "diverged at rate" in record["stopped"]  # SGD blows up well before lr 10
    assert "train with: tocha train --data mnist-sample --model mlp --optimizer sgd --lr " in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finder"]  # no run folder, nothing else
    assert sorted(p.name for p in (tmp_path / "finder").iterdir()) == [
        "lr_find.csv",
        "lr_find.json",
        "lr_find.png",
    ]
    rows = (tmp_path / "finder" / "lr_find.csv").read_text().splitlines()
    rates = [float(r.split(",")[0]) for r in rows[1:]]
    assert rates == sorted(rates) and rates[0] == pytest.approx(1e-7)  # rising by equal factors
    assert rates[1] / rates[0] == pytest.approx(rates[-1] / rates[-2])


def test_the_suggestion_is_the_steepest_descent_of_a_known_curve():
    from tocha.training.lr_find import suggestion

    rates = list(np.logspace(-5, 0, 60))
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(r) + 2.5))) for r in rates]  # steepest at 10^-2.5
    steepest, minimum = suggestion(rates, losses)
    assert steepest == pytest.approx(10**-2.5, rel=0.25) and minimum == rates[-1]
    from tocha.training.lr_find import RangeTest

    said = RangeTest(rates, losses, losses, steepest=0.14, minimum_rate=0.167, stopped="diverged")
    assert said.suggested == pytest.approx(0.0167) and said.safe_range == pytest.approx((0.0167 / 3, 0.0167))
    assert RangeTest(rates, losses, losses, 0.007, 0.08, "diverged").suggested == 0.007  # the smaller rule's
    with pytest.raises(TochaError, match=r"after 3 step\(s\), at rate 1.5e-05: too few to suggest a rate"):
        suggestion(rates[:3], losses[:3])
    bad = run_main("lr-find", "--data", "mnist-sample", "--start-lr", "1", "--end-lr", "0.1")
    assert bad.returncode == 2 and "need 0 < start < end" in bad.stderr
