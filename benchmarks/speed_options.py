"""The measured effect of tocha's speed options on this machine: precision, channels_last, compile.

    python benchmarks/speed_options.py [--rounds 2]

Two setups on full data from ../shared/data: TinyVGG (10 hidden units, Adam, batch 256) on
Fashion-MNIST and the EstudoCaso1 MLP (SGD, batch 64) on MNIST. Each option set trains 2 epochs
and is timed on its second epoch (the first includes one-off warm-up, and compilation with
--compile). Option sets alternate within each round so machine drift spreads over all of them;
the summary gives each set's median seconds per epoch and its speed-up over plain fp32 / NCHW.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from common import SHARED_DATA, emit, machine, train_quietly

SETUPS = {
    "tinyvgg-fashion": {"data.name": "fashion-mnist", "model.name": "tinyvgg", "model.hidden_units": 10,
                        "train.optimizer": "adam", "train.lr": 0.002, "train.batch_size": 256},
    "mlp-mnist": {"data.name": "mnist", "model.name": "mlp", "model.hidden_sizes": [128, 64],
                  "train.loss": "nll", "train.optimizer": "sgd", "train.lr": 0.003, "train.momentum": 0.9,
                  "train.batch_size": 64},
}  # fmt: skip
OPTIONS = {
    "tinyvgg-fashion": {
        "fp32": {"train.channels_last": False},
        "fp32 channels_last": {"train.channels_last": True},
        "bf16": {"train.channels_last": False, "train.precision": "bf16"},
        "bf16 channels_last": {"train.channels_last": True, "train.precision": "bf16"},
        "fp32 channels_last compile": {"train.channels_last": True, "train.compile": True},
    },
    "mlp-mnist": {
        "fp32": {},
        "bf16": {"train.precision": "bf16"},
        "fp32 compile": {"train.compile": True},
    },
}


def second_epoch_seconds(setup: str, options: dict[str, object], data_dir: str, out_dir: str) -> float:
    settings = {**SETUPS[setup], **options, "train.epochs": 2}
    return train_quietly(settings, data_dir, out_dir).history[1]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    args = parser.parse_args()
    emit({"benchmark": "speed_options", **machine()})
    with tempfile.TemporaryDirectory() as out_dir:
        for setup in args.setups:
            times: dict[str, list[float]] = {name: [] for name in OPTIONS[setup]}
            for round_index in range(args.rounds):
                names = list(OPTIONS[setup])
                names = names[round_index % len(names) :] + names[: round_index % len(names)]  # rotate
                for name in names:
                    seconds = second_epoch_seconds(setup, OPTIONS[setup][name], args.data_dir, out_dir)
                    times[name].append(seconds)
                    emit(
                        {"setup": setup, "options": name, "round": round_index, "seconds_per_epoch": seconds}
                    )
            base = statistics.median(times["fp32"])
            for name, values in times.items():
                median = statistics.median(values)
                emit({"setup": setup, "options": name, "median_seconds_per_epoch": median,
                      "speedup_over_fp32": base / median, "all": values})  # fmt: skip


if __name__ == "__main__":
    main()
