"""Seconds per epoch of this tree's tocha against another tree's, measured alternately in one sitting.

    python benchmarks/versions.py --other PATH/TO/OTHER/src [--rounds 3] [--data-dir ../shared/data]

For a change that must not change speed (a restructuring): each round trains every setup once with
each tree's code, in a fresh process (`PYTHONPATH=<src>`), the two trees in an order that alternates
from round to round, so drift of the machine falls on both. The setups, on full data from
../shared/data, CPU, one thread count for all (this machine's core count):
- mlp: the EstudoCaso1 MNIST MLP (784-128-64-10, log-softmax + NLL, SGD lr 0.003 momentum 0.9,
  batch 64), 3 epochs of 60,000 images;
- tinyvgg: TinyVGG on Fashion-MNIST (10 hidden units, Adam, batch 64), 2 epochs of 20,000 images.
What is timed is the `seconds` each run records per epoch (the step loop), without the first epoch
(warm-up). Prints a JSON line per run, then per setup the median seconds per epoch of each tree and
their ratio (other / this: > 1 means this tree is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, SHARED_DATA, emit, machine

SETUPS = {
    "mlp": {"data.name": "mnist", "model.name": "mlp", "model.hidden_sizes": [128, 64], "train.loss": "nll",
            "train.optimizer": "sgd", "train.lr": 0.003, "train.momentum": 0.9, "train.epochs": 3},
    "tinyvgg": {"data.name": "fashion-mnist", "model.name": "tinyvgg", "model.hidden_units": 10,
                "data.train_limit": 20000, "train.epochs": 2},
}  # fmt: skip

# Run in the other process: the same public API in every version (tocha.config, tocha.training).
TRAIN = """
import json, sys
from tocha.config import RunConfig, set_value
from tocha.training import train
settings, out = json.loads(sys.argv[1]), sys.argv[2]
config = RunConfig(out_dir=out)
for key, value in settings.items():
    set_value(config, key, value)
result = train(config, log=lambda _line: None, progress=False)
print(json.dumps([row["seconds"] for row in result.history]))
"""


def run(src: Path, settings: dict[str, object], data_dir: Path) -> list[float]:
    """Seconds of each epoch of one run with the tocha found in `src`."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    full = {**settings, "data.data_dir": str(data_dir), "data.download": False}
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", TRAIN, json.dumps(full), out], env=env, cwd=out,
                              capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other tree's src/ folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    trees = {"this": REPO / "src", "other": args.other.resolve()}
    emit({"machine": machine(), "trees": {k: str(v) for k, v in trees.items()}})
    seconds: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for setup, settings in SETUPS.items():
            for tree in order:
                epochs = run(trees[tree], settings, args.data_dir)
                seconds.setdefault((setup, tree), []).extend(epochs[1:])
                emit({"round": round_, "setup": setup, "tree": tree, "epoch_seconds": epochs})
    for setup in SETUPS:
        this, other = (statistics.median(seconds[(setup, tree)]) for tree in ("this", "other"))
        emit({"setup": setup, "this_seconds_per_epoch": round(this, 3),
              "other_seconds_per_epoch": round(other, 3), "other_over_this": round(other / this, 3),
              "epochs_each": len(seconds[(setup, "this")])})  # fmt: skip


if __name__ == "__main__":
    main()
