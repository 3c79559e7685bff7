"""Why a validation split: the winner of a wide grid, chosen on test against chosen on validation,
and its accuracy on fresh images that neither choice saw.

    python benchmarks/selection_optimism.py [--seeds 0 1 2] [--epochs 4] [--draws 500]

The grid is 24 cells of an MLP on mnist-sample (4 learning rates x 3 hidden sizes x 2 activations),
each over the seeds, trained as tocha trains: 10% of the training images carved out for
validation, each run keeping its best epoch on validation. The choice is then made two ways on the
same trained runs, so that only the choice differs:

- chosen on test: the cell with the best mean accuracy on a test split is the winner, and that same
  mean is reported (what every choice made on the test split amounts to);
- chosen on validation: the cell with the best mean validation accuracy is the winner, and its mean
  on the test split is reported (tocha's way).

Test splits of n images (200 and 1,000) are drawn at random, many times, from MNIST's 10,000 test
images (from the full MNIST in ../shared/data: mnist-sample trains on the first 4,000 training
images, so none of these was trained on); the images not drawn are the fresh data. Optimism is the
reported score minus the winner's score on the fresh images, averaged over the draws (random draws
keep the test and fresh images alike, so what remains is the choice's own flattery). Prints one JSON
line per test size and protocol.
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
TEST_SIZES = [200, 1000]


def cells() -> list[dict[str, object]]:
    return [{"train.lr": lr, "model.hidden_sizes": h, "model.activation": a}
            for lr, h, a in itertools.product(LRS, HIDDEN, ACTIVATIONS)]  # fmt: skip


def mnist_test(data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's 10,000 test images and labels: none of them in mnist-sample's training split."""
    from tocha.data.load import load_dataset

    mnist = load_dataset("mnist", data_dir, download=False, log=lambda _line: None)
    return mnist.test.images, mnist.test.labels


def train_grid(seeds: list[int], epochs: int, out: Path, images: torch.Tensor,
               labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Each cell's mean validation accuracy over the seeds (cells,), and whether each of its runs
    got each test image right, as a share of its seeds (cells, images)."""
    import tocha
    from tocha.config import RunConfig, set_value
    from tocha.training import train

    val, right = [], []
    for index, cell in enumerate(cells()):
        cell_val, cell_right = [], []
        for seed in seeds:
            config = RunConfig(out_dir=str(out), run_name=f"c{index}-s{seed}")
            values = {"data.name": "mnist-sample", "model.name": "mlp", "train.epochs": epochs,
                      "train.seed": seed, **cell}  # fmt: skip
            for key, value in values.items():
                set_value(config, key, value)
            run = train(config, log=lambda _line: None, progress=False)
            summary = json.loads((run.run_dir / "summary.json").read_text())
            cell_val.append(summary["val_accuracy"])  # at the kept epoch
            model = tocha.load(run.run_dir)  # the kept weights, as evaluate and predict use them
            cell_right.append((model.logits(images).argmax(1) == labels).float())
        val.append(statistics.fmean(cell_val))
        right.append(torch.stack(cell_right).mean(0))
    return torch.tensor(val), torch.stack(right)


def choose(val: torch.Tensor, right: torch.Tensor, size: int, draws: int) -> dict[str, dict[str, float]]:
    """Over `draws` random test splits of `size` images: for each protocol, the winner's reported
    test score, its score on the fresh images, and the optimism (mean and std over the draws)."""
    generator = torch.Generator().manual_seed(0)
    on_val = int(val.argmax())
    found: dict[str, list[tuple[float, float]]] = {"chosen_on_test": [], "chosen_on_validation": []}
    for _ in range(draws):
        order = torch.randperm(right.shape[1], generator=generator)
        test, fresh = right[:, order[:size]].mean(1), right[:, order[size:]].mean(1)
        on_test = int(test.argmax())
        found["chosen_on_test"].append((float(test[on_test]), float(fresh[on_test])))
        found["chosen_on_validation"].append((float(test[on_val]), float(fresh[on_val])))
    summary = {}
    for protocol, pairs in found.items():
        gaps = [100 * (reported - fresh) for reported, fresh in pairs]
        summary[protocol] = {
            "reported": 100 * statistics.fmean(r for r, _ in pairs),
            "fresh": 100 * statistics.fmean(f for _, f in pairs),
            "optimism": statistics.fmean(gaps),
            "optimism_std": statistics.stdev(gaps),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    emit({"benchmark": "selection_optimism", **machine()})
    images, labels = mnist_test(args.data_dir)
    with tempfile.TemporaryDirectory() as out:
        val, right = train_grid(args.seeds, args.epochs, Path(out), images, labels)
    overall = right.mean(1)  # each cell's accuracy on all 10,000 test images
    emit({"cells": len(cells()), "seeds": len(args.seeds), "best_on_validation": cells()[int(val.argmax())],
          "cells_within_a_point_of_the_best": int((overall > overall.max() - 0.01).sum())})  # fmt: skip
    for size in TEST_SIZES:
        for protocol, figures in choose(val, right, size, args.draws).items():
            emit({"test_images": size, "draws": args.draws, "protocol": protocol,
                  **{k: round(v, 2) for k, v in figures.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
