"""`--shuffle blocks` against `--shuffle full`, training from disk: seconds per epoch with the
prepared file dropped from the page cache before the run (the first epoch reads it cold) and with
it cached (the second), and the test accuracy over seeds.

The page cache is dropped for the one file with `posix_fadvise(POSIX_FADV_DONTNEED)` (what `vmtouch
-e` does; `/proc/sys/vm/drop_caches` needs more privilege than a container has). Use the folder
`benchmarks/prepared.py --keep DIR` prepared (DIR/prepared-1).

    python benchmarks/block_shuffle.py DIR/prepared-1 [--seeds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepared import epoch_seconds  # noqa: E402 (the same record the image benchmark reads)


def drop_from_cache(path: Path) -> float:
    """Ask the kernel to forget the file's cached pages; the seconds a full read then takes (how
    cold it is), measured on a copy of the first 256 MB."""
    with path.open("rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    started = time.perf_counter()
    with path.open("rb") as f:
        f.read(256 << 20)
    seconds = time.perf_counter() - started
    with path.open("rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # cold again for the run
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    images = args.data / "train_images.npy"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    runs = Path(tempfile.mkdtemp(prefix="tocha-shuffle-"))
    results: dict[str, list[dict[str, float]]] = {"full": [], "blocks": []}
    for seed in range(args.seeds):
        for shuffle in results:  # alternately, so drifts of the machine fall on both
            cold_read = drop_from_cache(images)
            name = f"{shuffle}-{seed}"
            command = [sys.executable, "-m", "tocha", "train", "--data", str(args.data), "--model", "linear",
                       "--batch-size", "256", "--in-memory", "no", "--epochs", str(args.epochs), "--seed",
                       str(seed), "--shuffle", shuffle, "--out", str(runs / name)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr
            run = next((runs / name).iterdir())
            seconds = epoch_seconds(run)
            summary = json.loads((run / "summary.json").read_text())
            accuracy = summary["final_test_accuracy"]
            results[shuffle].append({"cold": seconds[0], "warm": statistics.fmean(seconds[1:]),
                                     "accuracy": accuracy, "read": cold_read})  # fmt: skip
            print(json.dumps({"run": name, **results[shuffle][-1]}), flush=True)
    for shuffle, rows in results.items():

        def spread(key: str, rows: list[dict[str, float]] = rows) -> str:
            values = [r[key] for r in rows]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.3f} ± {sd:.3f}"

        print(f"{shuffle:>6}: cold epoch {spread('cold')} s, warm epoch {spread('warm')} s, "
              f"test accuracy {spread('accuracy')}, 256 MB read cold in {spread('read')} s")  # fmt: skip


if __name__ == "__main__":
    main()
