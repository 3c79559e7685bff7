"""tocha's training step against the eager floor: a bare loop over the same model, optimizer and data.

    python benchmarks/step_floor.py [--data-dir ../shared/data] [--rounds 3] [--threads 1]
                                    [--setups mlp tinyvgg table linear] [--tinyvgg-samples 6000]

For each setup, one run builds tocha's setup once (`training.setup.build_setup`: the data read and
put on the device, the model and its optimizer), then times, alternating, `--rounds` epochs of each:

- floor: what a hand-written loop does at the least. The same model (a copy of tocha's, so the same
  initial weights) with an optimizer of the same class and settings (SGD, fused where tocha's is),
  on the training split's inputs already normalised and held in memory as float32, with the same
  loss: per epoch torch.randperm, then per batch index_select of inputs and labels, forward, loss,
  zero_grad, backward, step. No metric, no check, nothing else.
- tocha: an epoch as `training.fit` runs it and as its `seconds` column reports it: the new order
  and empty sums (`DeviceData.new_epoch`), then `training.fit.train_epoch` (batches, steps, the
  running sums, the stop and divergence checks, the epoch's metrics read once at its end).

Each is timed with the wall clock (perf_counter, as tocha reports its seconds) and with this
thread's CPU time (thread_time: with --threads 1 all the work runs on this thread; less disturbed
by other processes on a shared machine). Printed: one JSON line per epoch timed, then per setup the
means and the ratio tocha / floor of the means (1.00: no cost beyond the floor), and the ratio of
the median rounds (an epoch now and then slowed by something else moves a mean, not a median), and
of the fastest rounds' CPU time (interference only ever adds time), with what that difference is
per step.

Setups (all SGD lr 0.003 momentum 0.9, batch 64, on the CPU):
- mlp: the notes' MLP 784-128-64-10, ReLU, log-softmax + NLLLoss, on MNIST's 54,001 training
  images (60,000 less the 10% validation carve).
- tinyvgg: tocha's TinyVGG, cross-entropy, on the first --tinyvgg-samples MNIST training images
  (then the validation carve), channels-last as tocha trains it on a CPU.
- table: tocha's MLP for tables on diamonds (53,940 rows, a regression: MSE), the table at
  DATA_DIR/tables/diamonds.csv.
- linear: tocha's linear model (784-10, cross-entropy) on MNIST's 54,001: a step of little work,
  where a fixed cost per step shows most.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import SHARED_DATA, emit, local_config, machine
from torch import nn

from tocha.training.fit import train_epoch
from tocha.training.interrupt import StopRequest
from tocha.training.setup import Setup, build_setup

OPTIMIZER = {"train.optimizer": "sgd", "train.lr": 0.003, "train.momentum": 0.9, "train.batch_size": 64,
             "train.device": "cpu"}  # fmt: skip
SETUPS: dict[str, dict[str, object]] = {
    "mlp": {
        "data.name": "mnist",
        "model.name": "mlp",
        "model.hidden_sizes": [128, 64],
        "model.activation": "relu",
        "train.loss": "nll",
    },
    "tinyvgg": {"data.name": "mnist", "model.name": "tinyvgg", "train.loss": "cross_entropy"},
    "table": {"data.name": "diamonds", "model.name": "mlp"},
    # A step of little work, where what tocha does beyond the floor shows most.
    "linear": {"data.name": "mnist", "model.name": "linear", "train.loss": "cross_entropy"},
}
Timing = tuple[float, float]  # (wall seconds, CPU seconds of this thread)


def timed(work: Callable[[], None]) -> Timing:
    wall, cpu = time.perf_counter(), time.thread_time()
    work()
    return time.perf_counter() - wall, time.thread_time() - cpu


class Floor:
    """The bare eager loop over a copy of `s`'s model, optimizer and loss, on its training inputs
    normalised once and held in memory."""

    def __init__(self, s: Setup) -> None:
        self.model = copy.deepcopy(s.model)
        self.optimizer = same_optimizer(s.learner.opt.optimizer, self.model)
        self.loss = s.task.loss
        train = s.data.train_set
        inputs = torch.cat([s.data.normalize(part) for part in train.images.split(4096)])
        # Channels-last batches (TinyVGG on a CPU) gathered as tocha's are: from (N, H, W, C) memory.
        self.nhwc = inputs.ndim == 4 and inputs.shape[1] > 1 and s.data.normalize.channels_last
        self.inputs = inputs.permute(0, 2, 3, 1).contiguous() if self.nhwc else inputs
        self.labels, self.batch_size = train.labels, s.data.batch_size

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.inputs.index_select(0, idx)
        return x.permute(0, 3, 1, 2) if self.nhwc else x

    def epoch(self) -> None:
        model, optimizer, loss_fn, labels = self.model, self.optimizer, self.loss, self.labels
        model.train()
        order = torch.randperm(len(labels))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            loss = loss_fn(model(self.batch(idx)), labels.index_select(0, idx))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def same_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """An optimizer of `optimizer`'s class and settings (fused or not, momentum...) for `model`."""
    kind = type(optimizer)
    accepted = inspect.signature(kind).parameters
    return kind(model.parameters(), **{k: v for k, v in optimizer.defaults.items() if k in accepted})


def tocha_epoch(s: Setup, epoch: int, reported: list[float]) -> Callable[[], None]:
    """One epoch as `training.fit` runs it; tocha's own seconds for it go into `reported`."""

    def work() -> None:
        reading = time.perf_counter()
        s.data.read_again(epoch)
        tally = s.data.new_epoch(s.task)
        tally.seconds += time.perf_counter() - reading
        metrics = train_epoch(s, tally, StopRequest(), f"epoch {epoch}", show_bar=False)
        assert metrics is not None, "the epoch stopped part-way"
        reported.append(tally.seconds)

    return work


def compare(name: str, settings: dict[str, object], args: argparse.Namespace, out_dir: str) -> dict[str, Any]:
    """`--rounds` epochs of the floor and of tocha on setup `name`, alternating (which goes first
    alternates too); the means and their ratios."""
    config = {**OPTIMIZER, **settings, "train.threads": args.threads, "train.seed": 0}
    if name == "tinyvgg":
        config["data.train_limit"] = args.tinyvgg_samples
    s = build_setup(local_config(config, args.data_dir, out_dir), log=lambda _line: None)
    floor = Floor(s)
    runs: dict[str, list[Timing]] = {"floor": [], "tocha": []}
    reported: list[float] = []
    for round_index in range(args.rounds + 1):  # round 0 warms both up and is not counted
        pair = [("floor", floor.epoch), ("tocha", tocha_epoch(s, round_index + 1, reported))]
        for method, run in pair if round_index % 2 else pair[::-1]:
            seconds = timed(run)
            if round_index:
                runs[method].append(seconds)
                emit({"setup": name, "method": method, "round": round_index, "wall_s": seconds[0],
                      "cpu_s": seconds[1]})  # fmt: skip
    return summary(name, s, runs, reported[1:])


def summary(name: str, s: Setup, runs: dict[str, list[Timing]], reported: list[float]) -> dict[str, Any]:
    means = {m: [statistics.mean(t[i] for t in runs[m]) for i in (0, 1)] for m in runs}
    return {
        "setup": name,
        "samples": len(s.data.train_set),
        "steps": s.data.steps_per_epoch,
        "model": s.cfg.model.name,
        "threads": torch.get_num_threads(),
        "rounds": len(runs["floor"]),
        "floor_wall_s": means["floor"][0],
        "tocha_wall_s": means["tocha"][0],
        "tocha_reported_s": statistics.mean(reported),
        "ratio_wall": means["tocha"][0] / means["floor"][0],
        # The median round's: an epoch slowed by another process now and then moves the mean, not it.
        "ratio_wall_median": statistics.median(t[0] for t in runs["tocha"])
        / statistics.median(t[0] for t in runs["floor"]),
        "floor_cpu_s": means["floor"][1],
        "tocha_cpu_s": means["tocha"][1],
        "ratio_cpu": means["tocha"][1] / means["floor"][1],
        "ratio_cpu_median": statistics.median(t[1] for t in runs["tocha"])
        / statistics.median(t[1] for t in runs["floor"]),
        # The fastest rounds': interference only ever adds time. And tocha's cost beyond the floor per step.
        "ratio_cpu_min": min(t[1] for t in runs["tocha"]) / min(t[1] for t in runs["floor"]),
        "extra_us_per_step_min": 1e6
        * (min(t[1] for t in runs["tocha"]) - min(t[1] for t in runs["floor"]))
        / s.data.steps_per_epoch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--rounds", type=int, default=3, help="epochs timed of each (after one to warm up)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both (default 1: steadier)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--tinyvgg-samples", type=int, default=6000)
    args = parser.parse_args()
    emit({"benchmark": "step_floor", **machine(), "rounds": args.rounds, "threads": args.threads})
    results = []
    with tempfile.TemporaryDirectory() as out_dir:
        for name in args.setups:
            results.append(compare(name, SETUPS[name], args, out_dir))
            emit(results[-1])
    for r in results:
        print(f"{r['setup']:8s} floor {r['floor_wall_s']:.3f} s  tocha {r['tocha_wall_s']:.3f} s  "
              f"ratio {r['ratio_wall']:.3f} (median round {r['ratio_wall_median']:.3f})   (CPU time: "
              f"{r['floor_cpu_s']:.3f} / {r['tocha_cpu_s']:.3f} = {r['ratio_cpu']:.3f}, median "
              f"{r['ratio_cpu_median']:.3f}, fastest rounds {r['ratio_cpu_min']:.3f}: "
              f"{r['extra_us_per_step_min']:+.1f} us a step)  {r['samples']} samples, {r['rounds']} rounds",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
