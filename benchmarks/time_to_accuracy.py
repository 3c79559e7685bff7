"""Seconds of training until the test accuracy first reaches a target, with tocha's own recipes.

    python benchmarks/time_to_accuracy.py [--recipes mnist fashion-mnist] [--seeds 0 1 2]

A recipe is a full `tocha train` configuration (below); the test set is evaluated after every
epoch and the time to target is the summed training seconds of the epochs up to and including the
first one whose test accuracy reaches the target (evaluation time excluded, as in `metrics.csv`).
Prints one JSON line per run and a summary line per recipe (mean and spread over the seeds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from common import SHARED_DATA, emit, machine, train_quietly

RECIPES: dict[str, tuple[float, dict[str, object]]] = {
    "mnist": (0.98, {"data.name": "mnist", "model.name": "mlp", "model.hidden_sizes": [512],
                     "train.optimizer": "adam", "train.lr": 0.003, "train.schedule": "onecycle",
                     "train.batch_size": 128, "train.precision": "bf16", "train.epochs": 4}),
    "fashion-mnist": (0.90, {"data.name": "fashion-mnist", "model.name": "tinyvgg", "model.hidden_units": 16,
                             "train.optimizer": "adam", "train.lr": 0.01, "train.schedule": "onecycle",
                             "train.batch_size": 256, "train.precision": "bf16", "train.epochs": 3}),
}  # fmt: skip


def run(recipe: str, seed: int, data_dir: str, out_dir: str) -> dict[str, object]:
    target, settings = RECIPES[recipe]
    history = train_quietly({**settings, "train.seed": seed}, data_dir, out_dir).history
    elapsed, reached = 0.0, None
    for row in history:
        elapsed += row["seconds"]
        if row["test_accuracy"] >= target:
            reached = {"epoch": row["epoch"], "seconds": elapsed, "test_accuracy": row["test_accuracy"]}
            break
    return {
        "recipe": recipe,
        "target": target,
        "seed": seed,
        "reached": reached,
        "final_test_accuracy": history[-1]["test_accuracy"],
        "total_train_seconds": sum(row["seconds"] for row in history),
        "accuracy_per_epoch": [row["test_accuracy"] for row in history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    args = parser.parse_args()
    emit({"benchmark": "time_to_accuracy", **machine()})
    with tempfile.TemporaryDirectory() as out_dir:
        for recipe in args.recipes:
            records = [run(recipe, seed, args.data_dir, out_dir) for seed in args.seeds]
            for record in records:
                emit(record)
            times = [r["reached"]["seconds"] for r in records if r["reached"]]
            finals = [r["final_test_accuracy"] for r in records]
            emit({
                "recipe": recipe, "target": RECIPES[recipe][0], "settings": RECIPES[recipe][1],
                "seeds_reaching_target": f"{len(times)}/{len(records)}",
                "seconds_to_target_mean": statistics.mean(times) if times else None,
                "seconds_to_target_max": max(times) if times else None,
                "final_accuracy_mean": statistics.mean(finals),
                "final_accuracy_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            })  # fmt: skip


if __name__ == "__main__":
    main()
