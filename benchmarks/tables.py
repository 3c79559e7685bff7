"""Tables: tocha against the usual tabular loop and scikit-learn, on diabetes and diamonds.

    python benchmarks/tables.py speed [--seeds 0 1 2] [--epochs 5] [--data-dir ../shared/data]
    python benchmarks/tables.py quality [--seeds 0 1 2 3 4] [--data-dir ../shared/data]

speed: seconds per epoch on diamonds (43,152 train rows, 26 features) of one setup, MLP 26-128-64-1
ReLU, Adam lr 0.001, MSE on the standardised price, batch 128, trained three ways, methods rotated
each round, all from the same initial weights (torch.manual_seed(seed) before building the same
nn.Sequential) and the same encoded, standardised rows (tocha's split and encoding):
- loop: the tabular tutorial: TensorDataset(X, y) + DataLoader(batch_size=128, shuffle=True), then
  forward, loss, zero_grad, backward, step and running_loss += loss.item(); the whole `for` loop timed.
- tocha: tocha.train() with the same settings; the `seconds` it records per epoch (training only).
- sklearn: MLPRegressor(hidden_layer_sizes=(128, 64), batch_size=128, Adam lr 0.001, max_iter=epochs)
  on the standardised target (TransformedTargetRegressor); fit seconds / epochs run.
Not timed: reading and encoding the CSV, building the model, test evaluation.

quality: test R² and RMSE (mean ± std over seeds) and training seconds on diabetes and diamonds for
tocha's linear model and MLP and for every scikit-learn regression baseline, on tocha's split.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, emit, machine

SPEED = {"model.name": "mlp", "model.hidden_sizes": [128, 64], "train.optimizer": "adam", "train.lr": 0.001,
         "train.batch_size": 128, "train.eval_batch_size": 10000}  # fmt: skip
RECIPES = {  # tocha's settings per table and model for the quality table
    ("diabetes", "linear"): {"train.epochs": 300, "train.optimizer": "sgd", "train.lr": 0.1,
                             "train.batch_size": 400},
    ("diabetes", "mlp"): {"train.epochs": 100, "train.lr": 0.001, "train.batch_size": 32,
                          "model.hidden_sizes": [32], "train.weight_decay": 0.01},
    ("diamonds", "linear"): {"train.epochs": 10, "train.lr": 0.01, "train.batch_size": 256},
    ("diamonds", "mlp"): {"train.epochs": 20, "train.lr": 0.001, "train.batch_size": 256},
}  # fmt: skip


def config(name: str, settings: dict, seed: int, data_dir: Path, out: Path):  # noqa: ANN201
    from tocha.config import RunConfig, set_value

    cfg = RunConfig(out_dir=str(out))
    for key, value in {
        **settings,
        "data.name": name,
        "data.data_dir": str(data_dir),
        "train.seed": seed,
    }.items():
        set_value(cfg, key, value)
    return cfg


def standardised(data):  # noqa: ANN001, ANN201
    """The rows and targets exactly as tocha's model sees and learns them."""
    import torch

    from tocha.data.table_set import feature_stats

    mean, std = (torch.tensor(v) for v in feature_stats(data))
    y_mean, y_std = data.table["target_scale"]
    x = lambda s: (s.images[:, :, 0, 0] - mean) / std  # noqa: E731
    return (
        x(data.train),
        (data.train.labels - y_mean) / y_std,
        x(data.test),
        data.test.labels,
        (y_mean, y_std),
    )


def r2(pred, y) -> float:  # noqa: ANN001
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def loop_run(data, seed: int, epochs: int) -> tuple[list[float], float]:  # noqa: ANN001
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    x, y, x_test, y_test, (m, s) = standardised(data)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 1))  # fmt: skip
    loader = DataLoader(TensorDataset(x, y[:, None]), batch_size=128, shuffle=True)
    optimizer, criterion, seconds = torch.optim.Adam(model.parameters(), lr=0.001), nn.MSELoss(), []
    for _ in range(epochs):
        model.train()
        start, running_loss = time.perf_counter(), 0.0
        for xb, yb in loader:
            loss = criterion(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        seconds.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        pred = model(x_test)[:, 0] * s + m
    return seconds, r2(pred.double(), y_test.double())


def tocha_run(seed: int, epochs: int, data_dir: Path, out: Path) -> tuple[list[float], float]:
    from tocha.training import train

    cfg = config("diamonds", {**SPEED, "train.epochs": epochs}, seed, data_dir, out)
    result = train(cfg, log=lambda _: None, progress=False)
    return [row["seconds"] for row in result.history], result.final.r2


def sklearn_run(data, seed: int, epochs: int) -> tuple[list[float], float]:  # noqa: ANN001
    import warnings

    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    x, _, x_test, y_test, _ = standardised(data)
    mlp = MLPRegressor(hidden_layer_sizes=(128, 64), batch_size=128, learning_rate_init=0.001,
                       max_iter=epochs, random_state=seed)  # fmt: skip
    model = TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not converged" after the fixed number of epochs: intended
        start = time.perf_counter()
        model.fit(x.numpy(), data.train.labels.numpy())
        total = time.perf_counter() - start
    runs = model.regressor_.n_iter_
    return [total / runs] * runs, r2(model.predict(x_test.numpy()), y_test.numpy().astype("float64"))


def speed(seeds: list[int], epochs: int, data_dir: Path) -> None:
    from tocha.config import DataConfig
    from tocha.data.load import load_configured

    data = load_configured(DataConfig(name="diamonds", data_dir=str(data_dir)), log=lambda _: None)
    methods = ["loop", "tocha", "sklearn"]
    with tempfile.TemporaryDirectory() as out:
        for round_, seed in enumerate(seeds):
            for method in methods[round_ % 3 :] + methods[: round_ % 3]:
                if method == "loop":
                    seconds, score = loop_run(data, seed, epochs)
                elif method == "tocha":
                    seconds, score = tocha_run(seed, epochs, data_dir, Path(out))
                else:
                    seconds, score = sklearn_run(data, seed, epochs)
                emit({"kind": "speed", "method": method, "seed": seed, "epoch_seconds": seconds,
                      "seconds_per_epoch": statistics.mean(seconds), "test_r2": score})  # fmt: skip


def quality(seeds: list[int], data_dir: Path) -> None:
    from tocha.config import DataConfig
    from tocha.data.load import load_configured
    from tocha.experiments.baseline_estimators import REGRESSION_BASELINES
    from tocha.experiments.baselines import run_baseline
    from tocha.training import train

    with tempfile.TemporaryDirectory() as out:
        for name in ("diabetes", "diamonds"):
            data = load_configured(DataConfig(name=name, data_dir=str(data_dir)), log=lambda _: None)
            for seed in seeds:
                for model in ("linear", "mlp"):
                    settings = {"model.name": model, **RECIPES[(name, model)]}
                    result = train(config(name, settings, seed, data_dir, Path(out)), log=lambda _: None,
                                   progress=False)  # fmt: skip
                    emit({"kind": "quality", "table": name, "method": f"tocha {model}", "seed": seed,
                          "test_r2": result.final.r2, "test_rmse": result.final.rmse,
                          "train_seconds": sum(row["seconds"] for row in result.history)})  # fmt: skip
                for baseline in REGRESSION_BASELINES:
                    b = run_baseline(baseline, data, seed)
                    emit({"kind": "quality", "table": name, "method": f"sklearn {baseline}", "seed": seed,
                          "test_r2": b.metrics["r2"], "test_rmse": b.metrics["rmse"],
                          "train_seconds": b.fit_seconds})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["speed", "quality"])
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    emit({"kind": "machine", **machine()})
    if args.what == "speed":
        speed(args.seeds or [0, 1, 2], args.epochs, args.data_dir)
    else:
        quality(args.seeds or [0, 1, 2, 3, 4], args.data_dir)


if __name__ == "__main__":
    main()
