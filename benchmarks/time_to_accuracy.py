"""Seconds of training until the validation accuracy first reaches a target, with tocha's recipes.

    python benchmarks/time_to_accuracy.py [--recipes mnist fashion-mnist] [--seeds 0 1 2]

A recipe is a full `tocha train` configuration (below). The stop is chosen on the validation split
(10% of the training images, stratified): the time to target is the summed training seconds of the
epochs up to and including the first one whose validation accuracy reaches the target (evaluation
time excluded, as in `metrics.csv`), and what is reported is that epoch's test accuracy (the test
split is scored every epoch for this, never used to decide). Prints one JSON line per run and a
summary line per recipe (mean and spread over the seeds).
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
MEASURED = {"train.test_every_epoch": True}  # the test accuracy of the epoch the validation chose


def run(recipe: str, seed: int, data_dir: str, out_dir: str) -> dict[str, object]:
    target, settings = RECIPES[recipe]
    result = train_quietly({**settings, **MEASURED, "train.seed": seed}, data_dir, out_dir)
    history = result.history
    elapsed, reached = 0.0, None
    for row in history:
        elapsed += row["seconds"]
        if row["val_accuracy"] >= target:  # chosen on validation
            reached = {"epoch": row["epoch"], "seconds": elapsed, "val_accuracy": row["val_accuracy"],
                       "test_accuracy": row["test_accuracy"]}  # fmt: skip
            break
    return {
        "recipe": recipe,
        "target": target,
        "seed": seed,
        "reached": reached,
        "final_test_accuracy": result.final.accuracy,  # the kept weights', scored once
        "total_train_seconds": sum(row["seconds"] for row in history),
        "val_accuracy_per_epoch": [row["val_accuracy"] for row in history],
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
