"""Seconds per epoch of the default run with 0 and 1 competing busy processes, by thread setting.

    python benchmarks/threads.py [--epochs 3] [--rounds 2] [--settings 1 2 auto auto-spin]

Each measurement is a real `tocha train --data fashion-mnist-sample` (TinyVGG, the defaults) in a
fresh process; the competitor is another process spinning one core (`while True: pass`), as a second
job on a shared machine is. Settings: `1` and `2` are `--threads 1` / `--threads 2`; `auto` is
tocha's default (one thread per idle core, counted at the start); `2-passive` is 2 threads with
OpenMP's passive waiting (OMP_WAIT_POLICY=passive: idle threads sleep instead of spinning).
Seconds per epoch are the training seconds tocha records (metrics.csv), the first epoch left out
(warm-up); the order of the settings is rotated each round.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import emit, machine

SPIN = "while True: pass"


def run(setting: str, epochs: int, busy: int, out: Path) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    flags = [] if setting == "auto" else ["--threads", setting.split("-")[0]]
    if setting.endswith("-passive"):
        env["OMP_WAIT_POLICY"] = "passive"
    competitors = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        name = f"{setting}-{busy}"
        subprocess.run([sys.executable, "-m", "tocha", "train", "--data", "fashion-mnist-sample", "--epochs",
                        str(epochs), "--no-progress", "--out", str(out), "--name", name, *flags],
                       check=True, env=env, capture_output=True)  # fmt: skip
    finally:
        for p in competitors:
            p.kill()
            p.wait()
    with (out / name / "metrics.csv").open() as f:
        return [float(row["seconds"]) for row in csv.DictReader(f)][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", nargs="+", default=["1", "2", "auto", "2-passive"])
    args = parser.parse_args()
    emit({"kind": "machine", **machine()})
    for round_ in range(args.rounds):
        settings = args.settings[round_ % len(args.settings) :] + args.settings[: round_ % len(args.settings)]
        for busy in (0, 1):
            for setting in settings:
                with tempfile.TemporaryDirectory() as out:
                    seconds = run(setting, args.epochs, busy, Path(out))
                emit({"round": round_, "setting": setting, "busy": busy, "epoch_seconds": seconds,
                      "seconds_per_epoch": sum(seconds) / len(seconds)})  # fmt: skip


if __name__ == "__main__":
    main()
