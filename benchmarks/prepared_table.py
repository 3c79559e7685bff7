"""A table larger than tocha reads into memory: a generated CSV of 10 million rows (about 700 MB)
is refused by `tocha train --data FILE.csv` with the way on, prepared with `tocha data prepare`
in bounded memory, and trained from disk; each step's time and peak anonymous memory (RssAnon of
the process tree, sampled every 0.2 s: the memory a process owns, not the page cache of the files
it maps) are printed.

The table: 8 numeric columns (one with 1% missing cells), a text column of 6 categories and a
target of 3 classes decided by a noisy linear rule of the numbers and the category, so a model has
something to learn.

    python benchmarks/prepared_table.py [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepared import peak_anon  # noqa: E402 (the same measurement as the image benchmark)

COLOURS = np.array(["red", "green", "blue", "amber", "violet", "grey"])
CHUNK = 500_000


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` rows, written half a million at a time."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=8)
    with path.open("w") as f:
        f.write(",".join([f"x{i}" for i in range(8)] + ["colour", "kind"]) + "\n")
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            x = rng.normal(size=(n, 8)).astype(np.float32)
            colour = rng.integers(len(COLOURS), size=n)
            score = x @ weights + 0.5 * colour + rng.normal(scale=0.5, size=n)
            kind = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
            cells = np.char.mod("%.4f", x).astype(object)
            cells[rng.random(n) < 0.01, 3] = ""  # 1% missing in x3: --fill mean fills them
            ends = [f"{COLOURS[c]},k{k}" for c, k in zip(colour, kind, strict=True)]
            f.write("".join(",".join(row) + "," + end + "\n" for row, end in zip(cells, ends, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tocha-table-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"table-{args.rows}.csv"
    if not csv.is_file():
        started = time.perf_counter()
        write_table(csv, args.rows)
        print(f"wrote {csv}: {args.rows:,} rows, {csv.stat().st_size / 1e6:,.0f} MB "
              f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    tocha = [sys.executable, "-m", "tocha"]

    refused = peak_anon([*tocha, "train", "--data", str(csv), "--target", "kind", "--fill", "mean"], env)[1]
    print(f"read whole: exit {refused.returncode}: {refused.stderr.strip().splitlines()[-1]}")

    out = work / "prepared"
    started = time.perf_counter()
    peak, made = peak_anon([*tocha, "data", "prepare", str(csv), "--target", "kind", "--fill", "mean",
                            "--out", str(out)], env)  # fmt: skip
    seconds = time.perf_counter() - started
    assert made.returncode == 0, made.stderr
    size = sum(p.stat().st_size for p in out.glob("*.npy"))
    print(f"prepare: {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s), peak RssAnon {peak / 1e9:.2f} GB; "
          f"arrays {size / 1e9:.2f} GB")  # fmt: skip

    started = time.perf_counter()
    peak, trained = peak_anon([*tocha, "train", "--data", str(out), "--in-memory", "no", "--epochs", "1",
                               "--batch-size", "1024", "--out", str(work / "runs")], env)  # fmt: skip
    seconds = time.perf_counter() - started
    assert trained.returncode == 0, trained.stderr
    print(f"train 1 epoch from disk: {seconds:.0f} s, peak RssAnon {peak / 1e9:.2f} GB")
    print("\n".join(trained.stdout.strip().splitlines()[-3:]))


if __name__ == "__main__":
    main()
