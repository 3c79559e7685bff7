"""`tocha search` against a random search and `tocha compare`'s grid on the same budget: full
Fashion-MNIST, the MLP, 3 epochs a run. Each method picks configurations on the validation split;
its 3 best are then confirmed over 3 seeds as compare reports them; the table gives the best
confirmed configuration's test accuracy (mean ± std over the seeds) and each method's wall time.

    python benchmarks/search.py [--trials 30] [--data-dir ../shared/data] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tocha.config import config_from_dict  # noqa: E402
from tocha.experiments.compare import compare_cells, read_plan  # noqa: E402
from tocha.experiments.grid import cell_label  # noqa: E402

SPACE = ["lr=log:1e-4:3e-1", "hidden_sizes=choice:64|128|256,128|512,256", "optimizer=choice:sgd|adam"]
GRID = ["lr=0.0003,0.003,0.03,0.3", "hidden_sizes=[[64],[128],[256,128],[512,256]]", "optimizer=sgd,adam"]


def tocha(*args: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tocha", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started, done.stdout


def best_confirmed(report: Path) -> tuple[str, str, str]:
    """The top row of a compare report (ranked on validation): its cell, validation and test."""
    with (report / "summary.csv").open() as f:
        top = max(csv.DictReader(f), key=lambda r: float(r["val_accuracy_mean"]))  # ranked on validation
    test = f"{float(top['accuracy_mean']) * 100:.2f} ± {float(top['accuracy_std']) * 100:.2f}"
    return top["cell"], f"{float(top['val_accuracy_mean']) * 100:.2f}", test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--methods", default="tpe,random,grid", help="which to run, comma-separated")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tocha-search-"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    base = ["--data", "fashion-mnist", "--data-dir", args.data_dir, "--model", "mlp", "--epochs", "3",
            "--batch-size", "128"]  # fmt: skip
    rows = []
    methods = args.methods.split(",")
    for sampler in [m for m in ("tpe", "random") if m in methods]:
        space = [f"--space={s}" for s in SPACE]
        seconds, _ = tocha("search", *base, *space, "--trials", str(args.trials), "--sampler", sampler,
                           "--confirm", "3", "--seeds", "3", "--out", str(out / sampler),
                           env=env)  # fmt: skip
        best = best_confirmed(out / sampler / "confirm")
        rows.append((f"search, {sampler}, {args.trials} trials", seconds, *best))
        print(rows[-1], flush=True)
    if "grid" not in methods:
        return print_table(rows)
    seconds, _ = tocha("compare", *base, *[f"--vary={v}" for v in GRID], "--seeds", "1", "--out",
                       str(out / "grid"), env=env)  # fmt: skip
    plan = read_plan(out / "grid" / "comparison.yaml")
    with (out / "grid" / "summary.csv").open() as f:
        by_validation = sorted(csv.DictReader(f), key=lambda r: -float(r["val_accuracy_mean"]))
    ranked = [r["cell"] for r in by_validation][:3]  # the 3 best on validation
    cells = [next(c for c in plan["cells"] if cell_label(c) == label) for label in ranked]
    started = time.perf_counter()  # the grid's 3 best, confirmed over 3 seeds as the searches' were
    compare_cells(config_from_dict(plan["base"]), cells, [0, 1, 2], out / "grid-confirm", log=lambda _l: None)
    seconds += time.perf_counter() - started
    rows.append((f"compare grid, {len(plan['cells'])} cells x 1 seed", seconds,
                 *best_confirmed(out / "grid-confirm")))  # fmt: skip
    print_table(rows)


def print_table(rows: list[tuple]) -> None:
    print(
        "\n| method | wall time (s), search + confirmation | best configuration (on validation) | "
        "its validation % | its test % (3 seeds) |"
    )
    print("|---|---|---|---|---|")
    for name, secs, cell, val, test in rows:
        print(f"| {name} | {secs:.0f} | `{cell}` | {val} | {test} |")


if __name__ == "__main__":
    main()
