"""Forecasting (`--task forecast`, `data.series`): windows cut without leaking the future, the scale
from the training stretch alone, naive / seasonal-naive / linear baselines beside the model, real
series with real gaps, a forecast from a CSV's last rows, an exact resume, and bad input in one line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_DATA, run_main, straight_and_stopped_at

import tocha
from tocha.config import DataConfig
from tocha.data.series import load_series
from tocha.errors import TochaError


def quiet(_line: str) -> None:
    pass


def write_series(
    path: Path, values: list[float], times: list[int] | None = None, extra: dict | None = None
) -> Path:
    times = times if times is not None else list(range(2000, 2000 + len(values)))
    extra = extra or {}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time", "y", *extra])
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            writer.writerow([t, "" if v is None else v, *(column[i] for column in extra.values())])
    return path


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A season of 12 with noise (sd 0.2) on a slow trend: 600 rows."""
    rng = np.random.default_rng(0)
    t = np.arange(600)
    values = 3 * np.sin(2 * np.pi * t / 12) + 0.01 * t + rng.normal(0, 0.2, len(t))
    return write_series(
        tmp_path_factory.mktemp("series") / "seasonal.csv", [round(float(v), 4) for v in values]
    )


def test_windows_never_read_the_future_and_the_scale_is_the_training_stretch(tmp_path):
    path = write_series(tmp_path / "t.csv", [float(i) for i in range(100)])  # each value is its row
    cfg = DataConfig(
        name=str(path), task="forecast", target="y", window=5, horizon=3, test_fraction=0.2, val_fraction=0.1
    )
    data = load_series(cfg, str(path), quiet)
    n_test, n_val = 20, 8
    n_train = 100 - n_test - n_val
    for split, (low, high) in {
        "train": (0, n_train),
        "val": (n_train, n_train + n_val),
        "test": (n_train + n_val, 100),
    }.items():
        part = getattr(data, split)
        inputs, targets = part.images[:, 0, :, 0].numpy(), part.labels.numpy()
        assert targets.min() >= low and targets.max() < high  # every target in its own stretch
        assert (inputs[:, -1] + 1 == targets[:, 0]).all() and (np.diff(targets, axis=1) == 1).all()
        assert (inputs.max(1) < targets.min(1)).all()  # a window holds only the past
    series = data.details["series"]
    assert series["mean"] == [pytest.approx(np.arange(n_train).mean())]  # the training rows' alone
    assert data.task == "forecast" and data.classes == ["y[t+1]", "y[t+2]", "y[t+3]"]


def test_a_model_beats_the_naive_forecasts_of_a_seasonal_series(tmp_path, seasonal):
    from tocha.experiments.baselines import run_baseline

    values = {"task": "forecast", "target": "y", "window": 24, "horizon": 3, "progress": False, "threads": 1}
    run = tocha.train(data=str(seasonal), model="mlp", epochs=30, out_dir=str(tmp_path), log=quiet, **values)
    data = load_series(
        DataConfig(name=str(seasonal), task="forecast", target="y", window=24, horizon=3, season=12),
        str(seasonal),
        quiet,
    )
    naive, seasonal_naive, linear = (run_baseline(n, data) for n in ("naive", "seasonal_naive", "linear"))
    assert run.final.values["mae"] < 0.5 * naive.metrics["mae"]  # the season is there to be learnt
    assert seasonal_naive.metrics["mae"] < naive.metrics["mae"]
    assert linear.metrics["mae"] < 0.3  # noise sd 0.2: the mean absolute error of a perfect fit is 0.16
    assert math.isclose(run.final.values["rmse"] ** 2, run.final.values["mse"], rel_tol=1e-4)
    with pytest.raises(TochaError, match="seasonal_naive baseline needs --season S"):
        run_baseline(
            "seasonal_naive",
            load_series(
                DataConfig(name=str(seasonal), task="forecast", target="y", window=24), str(seasonal), quiet
            ),
        )


def test_a_forecast_from_a_csv_last_rows_through_the_run_and_its_onnx_export(tmp_path, seasonal):
    run = tocha.train(
        data=str(seasonal),
        task="forecast",
        target="y",
        window=24,
        horizon=2,
        model="linear",
        epochs=5,
        out_dir=str(tmp_path),
        log=quiet,
        progress=False,
    )
    said = run_main("predict", str(run.run_dir), str(seasonal))
    assert said.returncode == 0, said.stderr
    header, row = said.stdout.splitlines()
    assert header == "after,y[t+1],y[t+2]" and row.startswith("2599,")
    exported = run_main("export", str(run.run_dir), "--format", "onnx", "--out", str(tmp_path / "f.onnx"))
    assert exported.returncode == 0, exported.stderr
    through = run_main("predict", str(tmp_path / "f.onnx"), str(seasonal))
    got, expected = (np.array(s.stdout.splitlines()[1].split(",")[1:], float) for s in (through, said))
    assert np.allclose(got, expected, rtol=1e-4)


@pytest.mark.skipif(not (SHARED_DATA / "series").is_dir(), reason="the shared series folder is not here")
def test_real_series_weekly_co2_with_its_missing_weeks(tmp_path):
    lines: list[str] = []
    run = tocha.train(
        data=str(SHARED_DATA / "series" / "co2.csv"),
        task="forecast",
        target="co2",
        window=52,
        horizon=4,
        model="linear",
        epochs=3,
        out_dir=str(tmp_path),
        log=lines.append,
        progress=False,
    )
    assert any("empty cells of 'co2' filled by a straight line" in line for line in lines)
    assert run.final.values["mae"] < 5  # ppm, four weeks ahead, over a series from 313 to 370
    sun = tocha.train(
        data=str(SHARED_DATA / "series" / "sunspots.csv"),
        task="forecast",
        target="SUNACTIVITY",
        window=22,
        model="mlp",
        epochs=5,
        out_dir=str(tmp_path),
        log=quiet,
        progress=False,
    )
    assert np.isfinite(sun.final.values["rmse"])


def test_a_forecast_run_stopped_mid_epoch_resumes_exactly(tmp_path, seasonal):
    from test_resume import assert_same

    from tocha.config import RunConfig, set_value

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path), run_name=name)
        for key, value in {
            "data.name": str(seasonal),
            "data.task": "forecast",
            "data.target": "y",
            "data.window": 12,
            "data.horizon": 2,
            "model.name": "mlp",
            "train.epochs": 2,
            "train.batch_size": 16,
            "train.threads": 1,
            "train.schedule": "cosine",
        }.items():
            set_value(cfg, key, value)
        return cfg

    assert_same(*straight_and_stopped_at(config, 40))  # in epoch 2 (26 steps an epoch)


def test_rows_out_of_time_order_are_refused_unless_sorted(tmp_path):
    path = write_series(
        tmp_path / "o.csv", [float(i % 7) for i in range(60)], times=[*range(30), 100, *range(30, 59)]
    )
    result = run_main(
        "train",
        "--data",
        str(path),
        "--task",
        "forecast",
        "--target",
        "y",
        "--window",
        "5",
        "--out",
        str(tmp_path / "runs"),
    )
    assert (
        result.returncode == 2 and "goes back at line 33 (30 after 100): give --sort-by time" in result.stderr
    )
    assert not (tmp_path / "runs").exists()
    cfg = DataConfig(name=str(path), task="forecast", target="y", window=5, sort_by="time")
    data = load_series(cfg, str(path), quiet)
    assert len(data.train) > 0


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--window", "200"], "a window of 200 and a horizon of 1 need 201 rows"),
        (["--target", "nope"], "no column 'nope'"),
        (["--model", "gru"], "model 'gru' needs images"),
    ],
)
def test_bad_forecast_input_is_one_line_and_writes_nothing(tmp_path, extra, said):
    path = write_series(tmp_path / "s.csv", [float(i % 5) for i in range(100)])
    args = ["--target", "y", *extra] if "--target" not in extra else extra
    result = run_main(
        "train", "--data", str(path), "--task", "forecast", *args, "--out", str(tmp_path / "runs")
    )
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()
