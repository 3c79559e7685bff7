"""Why a validation split: the winner of a wide grid, chosen on test against chosen on validation,
and its accuracy on fresh images neither choice saw.

    python benchmarks/selection_optimism.py [--seeds 0 1 2] [--epochs 4]

The grid is 24 cells of an MLP on mnist-sample (4 learning rates x 3 hidden sizes x 2 activations),
each over the seeds. It is trained twice:

- as before validation existed: every training image trained on, the last weights kept, the cells
  ranked on their mean test accuracy, and that mean reported (`--val-fraction 0`);
- as tocha does now: 10% of the training images carved out for validation, each run keeping its
  best epoch on validation, the cells ranked on their mean validation accuracy, and the winner's
  test accuracy (scored once per run) reported.

Fresh images: mnist-sample's test split is the first 1,000 test images of MNIST, so the other 9,000
(from the full MNIST in ../shared/data) were seen by neither choice. Each winner's kept weights are
scored on them; the difference between what was reported and the fresh score is the optimism.
Prints one JSON line per protocol and a summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from pathlib import Path

import torch
from common import SHARED_DATA, emit, machine

LRS = [0.0003, 0.001, 0.003, 0.01]
HIDDEN = [[32], [128], [128, 64]]
ACTIVATIONS = ["relu", "tanh"]


def cells() -> list[dict[str, object]]:
    return [{"train.lr": lr, "model.hidden_sizes": h, "model.activation": a}
            for lr, h, a in itertools.product(LRS, HIDDEN, ACTIVATIONS)]  # fmt: skip


def fresh_images(data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's test images 1,000 to 9,999: not in mnist-sample, so neither choice saw them."""
    from tocha.data.load import load_dataset

    mnist = load_dataset("mnist", data_dir, download=False, log=lambda _line: None)
    return mnist.test.images[1000:], mnist.test.labels[1000:]


def protocol(name: str, settings: dict[str, object], rank_on: str, seeds: list[int], epochs: int,
             out: Path, fresh: tuple[torch.Tensor, torch.Tensor]) -> dict[str, object]:  # fmt: skip
    """Train the grid, choose its winner on `rank_on` (val or test), and score the winner on fresh data."""
    import tocha
    from tocha.config import RunConfig, set_value
    from tocha.training import train

    scores: dict[int, list[tuple[float, float, Path]]] = {}
    for index, cell in enumerate(cells()):
        for seed in seeds:
            config = RunConfig(out_dir=str(out / name), run_name=f"c{index}-s{seed}")
            values = {"data.name": "mnist-sample", "model.name": "mlp", "train.epochs": epochs,
                      "train.seed": seed, **settings, **cell}  # fmt: skip
            for key, value in values.items():
                set_value(config, key, value)
            run = train(config, log=lambda _line: None, progress=False)
            summary = json.loads((run.run_dir / "summary.json").read_text())
            chosen = summary["val_accuracy"] if rank_on == "val" else summary["final_test_accuracy"]
            scores.setdefault(index, []).append((chosen, summary["final_test_accuracy"], run.run_dir))
    means = {i: statistics.fmean(s[0] for s in runs) for i, runs in scores.items()}
    winner = max(means, key=means.get)
    images, labels = fresh
    fresh_scores = []
    for _, _, run_dir in scores[winner]:
        model = tocha.load(run_dir)
        fresh_scores.append(float((model.logits(images).argmax(1) == labels).float().mean()))
    reported = statistics.fmean(s[1] for s in scores[winner])
    return {
        "protocol": name, "chosen_on": rank_on, "winner": cells()[winner],
        "winner_chosen_score": means[winner], "winner_reported_test": reported,
        "winner_fresh": statistics.fmean(fresh_scores), "optimism": reported - statistics.fmean(fresh_scores),
        "cells": len(cells()), "seeds": len(seeds),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    emit({"benchmark": "selection_optimism", **machine()})
    fresh = fresh_images(args.data_dir)
    with tempfile.TemporaryDirectory() as out:
        on_test = protocol("chosen-on-test", {"data.val_fraction": 0, "train.keep": "last"}, "test",
                           args.seeds, args.epochs, Path(out), fresh)  # fmt: skip
        emit(on_test)
        on_val = protocol("chosen-on-validation", {}, "val", args.seeds, args.epochs, Path(out), fresh)
        emit(on_val)
    optimism = {"chosen_on_test": 100 * on_test["optimism"], "chosen_on_validation": 100 * on_val["optimism"]}
    emit({"summary": "optimism (reported - fresh), accuracy points", **optimism})


if __name__ == "__main__":
    main()
