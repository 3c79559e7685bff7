"""Wall time and accuracy of `tocha train` with no arguments, as a user runs it (a real process).

    python benchmarks/default_run.py [--repeats 2]

Two situations: full Fashion-MNIST on disk (TOCHA_DATA_DIR=../shared/data) and no dataset on
disk (the bundled sample). Each starts from an empty cache, so the first run includes decoding
the dataset files; later runs read the decoded cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, emit, machine


def timed_train(env: dict[str, str], out: Path) -> dict[str, object]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tocha", "train", "--no-progress", "--out", str(out)], env=env,
                   check=True, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    (run_dir,) = sorted(out.iterdir())[-1:]
    summary = json.loads((run_dir / "summary.json").read_text())
    for child in out.iterdir():  # one run folder at a time, so the next lookup is unambiguous
        child.rename(out.parent / f"done-{time.time_ns()}")
    return {"wall_seconds": wall, "test_accuracy": summary["final_test_accuracy"],
            "dataset": summary["dataset"], "train_seconds": summary["train_seconds"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    args = parser.parse_args()
    emit({"benchmark": "default_run", **machine()})
    for situation, data_dir in (("full fashion-mnist on disk", args.data_dir), ("nothing on disk", None)):
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if k != "TOCHA_DATA_DIR"}
            env["TOCHA_CACHE_DIR"] = str(Path(tmp) / "cache")
            if data_dir:
                env["TOCHA_DATA_DIR"] = data_dir
            for repeat in range(args.repeats):
                out = Path(tmp) / "runs"
                out.mkdir(exist_ok=True)
                record = timed_train(env, out)
                emit({"situation": situation, "cache": "cold" if repeat == 0 else "warm", **record})


if __name__ == "__main__":
    main()
