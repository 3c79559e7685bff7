"""Accuracy and seconds per epoch of tocha on two well-known course setups, over several seeds.

    python benchmarks/reference_setups.py [--setups estudocaso1 tinyvgg] [--seeds 0 1 2]

- estudocaso1: the EstudoCaso1 MNIST notebook: MLP 784-128-64-10, ReLU, log-softmax + NLLLoss,
  SGD lr 0.003 momentum 0.9, batch 64, 5 epochs (the notebook printed 95.87%).
- tinyvgg: the learnpytorch course's TinyVGG on Fashion-MNIST: 10 hidden units, batch 32,
  SGD lr 0.1, 3 epochs (the course reports 88.38%).

Full datasets from ../shared/data (or --data-dir). Prints one JSON line per run, then one
summary line per setup with mean and standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from common import SHARED_DATA, emit, machine, train_quietly

# The course's setups train on all the training images and have no validation split: so do these
# (`data.val_fraction` 0), for a like-for-like comparison with the course's numbers.
SETUPS = {
    "estudocaso1": {"data.name": "mnist", "data.val_fraction": 0,
                    "model.name": "mlp", "model.hidden_sizes": [128, 64],
                    "model.activation": "relu", "train.loss": "nll", "train.optimizer": "sgd",
                    "train.lr": 0.003, "train.momentum": 0.9, "train.batch_size": 64, "train.epochs": 5},
    "tinyvgg": {"data.name": "fashion-mnist", "data.val_fraction": 0,
                "model.name": "tinyvgg", "model.hidden_units": 10,
                "train.optimizer": "sgd", "train.lr": 0.1, "train.momentum": 0.0, "train.batch_size": 32,
                "train.epochs": 3},
}  # fmt: skip


def run(setup: str, seed: int, data_dir: str, out_dir: str) -> dict[str, object]:
    result = train_quietly({**SETUPS[setup], "train.seed": seed}, data_dir, out_dir)
    seconds = [row["seconds"] for row in result.history]
    return {
        "setup": setup,
        "seed": seed,
        "test_accuracy": result.final.accuracy,
        "seconds_per_epoch": statistics.mean(seconds),
        "epoch_seconds": seconds,
        "samples_per_second": statistics.mean(row["samples_per_second"] for row in result.history),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    args = parser.parse_args()
    emit({"benchmark": "reference_setups", **machine()})
    with tempfile.TemporaryDirectory() as out_dir:
        for setup in args.setups:
            records = [run(setup, seed, args.data_dir, out_dir) for seed in args.seeds]
            for record in records:
                emit(record)
            accuracies = [r["test_accuracy"] for r in records]
            epoch_seconds = [r["seconds_per_epoch"] for r in records]
            emit({
                "setup": setup, "seeds": args.seeds,
                "accuracy_mean": statistics.mean(accuracies),
                "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                "seconds_per_epoch_mean": statistics.mean(epoch_seconds),
                "seconds_per_epoch_min": min(epoch_seconds), "seconds_per_epoch_max": max(epoch_seconds),
            })  # fmt: skip


if __name__ == "__main__":
    main()
