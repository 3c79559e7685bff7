"""How often a finished two-process run fails as its processes exit.

    python benchmarks/teardown.py [--runs 40] [--parallel 1] [--busy 2]

Each run is a real `tocha train --nproc 2` (the MLP on mnist-sample, 2 epochs, gloo), started
`--parallel` at a time beside `--busy` processes that each spin a core (`while True: pass`), so
that the ranks compete for the cores as they do on a loaded machine. A run fails when its exit
status is not 0; the script counts failures and the aborts among them (`terminate called without
an active exception` on stderr). BENCHMARKS.md has the figures before and after
`training.run.leave_group` dropped the DDP wrapper ahead of `destroy_process_group`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import emit, machine

SPIN = "while True: pass"
ABORT = "terminate called without an active exception"
ARGS = ["--data", "mnist-sample", "--model", "mlp", "--hidden-sizes", "64", "--batch-size", "100",
        "--epochs", "2", "--nproc", "2", "--no-progress"]  # fmt: skip


def one_run(index: int, out: Path) -> tuple[int, bool]:
    """The exit status of one two-process run, and whether a rank aborted at exit."""
    command = [sys.executable, "-m", "tocha", "train", *ARGS, "--out", str(out), "--name", f"run{index}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    return done.returncode, ABORT in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--busy", type=int, default=2)
    args = parser.parse_args()
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda i: one_run(i, Path(tmp)), range(args.runs)))
    finally:
        for spinner in spinners:
            spinner.kill()
    failed = sum(code != 0 for code, _ in results)
    aborted = sum(abort for _, abort in results)
    emit({"machine": machine(), "runs": args.runs, "parallel": args.parallel, "busy": args.busy,
          "failed": failed, "aborted_at_exit": aborted})  # fmt: skip


if __name__ == "__main__":
    main()
