"""Does lr-find's suggestion train? Each case's range test, then short runs at the suggested rate,
at each rule's rate and at neighbours of the suggestion, over seeds.

    python benchmarks/lr_find_check.py [--seeds 0 1] [--epochs 3]

Cases: the notes' MLP (784-128-64-10) and TinyVGG (hidden_units 10) with SGD (momentum 0.9, the
notes') and Adam, on the bundled samples (mnist-sample, fashion-mnist-sample), and a table (wine,
mlp, Adam). For each: `range_test` from 1e-7 to 10 (100 steps, the command's defaults), its rules
(steepest descent of the smoothed loss; the minimum's rate / 10; the suggestion printed, the smaller
of the two), then `--epochs` epochs at each of those rates and at the suggestion / 3 and x 3, seeds
0 and 1: the validation metric at the kept epoch (accuracy). One JSON line per run, then per case.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from common import emit, machine

import tocha
from tocha.api import make_config
from tocha.training.lr_find import range_test

CASES = {
    "mlp-sgd": {"data": "mnist-sample", "model": "mlp", "hidden_sizes": [128, 64], "optimizer": "sgd",
                "momentum": 0.9},
    "mlp-adam": {"data": "mnist-sample", "model": "mlp", "hidden_sizes": [128, 64],
                 "optimizer": "adam"},
    "tinyvgg-sgd": {"data": "fashion-mnist-sample", "model": "tinyvgg", "hidden_units": 10,
                    "optimizer": "sgd", "momentum": 0.9},
    "tinyvgg-adam": {"data": "fashion-mnist-sample", "model": "tinyvgg", "hidden_units": 10,
                     "optimizer": "adam"},
    "table-adam": {"data": "wine", "model": "mlp", "optimizer": "adam"},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    emit({"benchmark": "lr_find_check", **machine(), "epochs": args.epochs, "seeds": args.seeds})
    with tempfile.TemporaryDirectory() as out:
        for case, options in CASES.items():
            found = range_test(make_config(**options, out_dir=out), 1e-7, 10.0, 100)
            rules = {"steepest": found.steepest, "minimum/10": found.minimum_rate / 10}
            chosen = min(rules.values())
            rates = {**rules, "suggested": chosen, "suggested/3": chosen / 3, "suggested*3": chosen * 3}
            scores = {}
            for name, lr in rates.items():
                values = []
                for seed in args.seeds:
                    run = tocha.train(**options, lr=lr, epochs=args.epochs, seed=seed, out_dir=out,
                                      progress=False, log=lambda _line: None)  # fmt: skip
                    values.append(max(row["val_accuracy"] for row in run.history))  # the kept epoch's
                    emit({"case": case, "rate": name, "lr": lr, "seed": seed, "val_accuracy": values[-1]})
                scores[name] = (lr, statistics.mean(values), min(values), max(values))
            emit({"case": case, "summary": {k: {"lr": v[0], "mean": v[1], "min": v[2], "max": v[3]}
                                            for k, v in scores.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
