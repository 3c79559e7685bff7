"""`tocha lr-find`: Leslie Smith's learning-rate range test, as fastai's `lr_find` and Lightning's
`Tuner.lr_find` run it.

The model trains on a copy of the run's setup for a few hundred steps while the learning rate rises
exponentially from `start_lr` to `end_lr`; the loss of each step is smoothed (an exponential moving
average with bias correction, fastai's), and the test stops once the smoothed loss has grown past
four times its lowest (it diverges). Two rules read the curve: the rate where the smoothed loss falls
fastest against log(rate) (the steepest descent, Lightning's) and the minimum's rate divided by 10
(fastai's older one). The suggestion is the smaller of the two: the steepest descent alone can sit
where training diverges (the notes' TinyVGG with SGD: 0.14, at chance, where the other rule's 0.017
trains to 82%), and in every case measured the smaller rate, and a third of it, trained
(benchmarks/lr_find_check.py, BENCHMARKS.md); three times it did not always. Nothing of a run is
written: the curve, its numbers and the suggestion go to the finder's own folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tocha.config import RunConfig
from tocha.devices import autocast
from tocha.errors import TochaError
from tocha.files import atomic_write, atomic_write_text
from tocha.models.code_trust import CodeTrust
from tocha.training.setup import build_setup

SMOOTHING = 0.98  # the moving average's weight of the past (fastai's)
DIVERGED = 4.0  # the test stops when the smoothed loss exceeds this many times its minimum


@dataclass
class RangeTest:
    rates: list[float]  # the learning rate of each step
    losses: list[float]  # each step's loss
    smoothed: list[float]  # the moving average, bias-corrected
    steepest: float  # the steepest descent's rate
    minimum_rate: float  # the rate of the smoothed minimum (its tenth is the other rule's suggestion)
    stopped: str  # why the test ended: diverged, or every step taken

    @property
    def suggested(self) -> float:
        """The smaller of the two rules' rates (see the module)."""
        return min(self.steepest, self.minimum_rate / 10)

    @property
    def safe_range(self) -> tuple[float, float]:
        """The rates that trained in every case measured: a third of the suggestion, up to it."""
        return self.suggested / 3, self.suggested


def range_test(config: RunConfig, start_lr: float, end_lr: float, steps: int,
               *, log: Callable[[str], None] = print,
               trust: CodeTrust = CodeTrust.RECORDED,
               data_trust: CodeTrust = CodeTrust.RECORDED) -> RangeTest:  # fmt: skip
    """The range test on the config's data and model (built as `tocha train` builds them, its seed
    included): `steps` steps, the rate rising from `start_lr` to `end_lr` by equal factors."""
    if not 0 < start_lr < end_lr or not all(math.isfinite(v) for v in (start_lr, end_lr)):
        raise TochaError(f"--start-lr {start_lr:g} and --end-lr {end_lr:g}: need 0 < start < end")
    if steps < 10:
        raise TochaError(f"--steps {steps}: the range test needs at least 10 steps")
    decades = math.log10(end_lr) - math.log10(start_lr)  # in logs: 1e300 / 1e-300 is no float
    if decades > steps - 1:
        raise TochaError(f"--start-lr {start_lr:g} to --end-lr {end_lr:g} spans {decades:.0f} decades in "
                         f"{steps} steps, over a decade a step: too coarse to find a rate; narrow the "
                         f"range (the default, 1e-7 to 10, spans 8) or give --steps {math.ceil(decades) + 1} "
                         "or more")  # fmt: skip
    s = build_setup(config, log, trust=trust, data_trust=data_trust)
    task, model, opt = s.task, s.learner.forward_model, s.learner.opt
    factor = 10 ** (decades / (steps - 1))
    rates, losses, smoothed = [], [], []
    average, best, stopped = 0.0, math.inf, "every step taken"
    model.train()
    while len(rates) < steps:  # past an epoch's batches, the next epoch's (a new order)
        tally = s.data.new_epoch(task)
        for _step, x, y, _weight in s.data.batches(tally, s.runtime.rank):
            rate = start_lr * factor ** len(rates)
            for group in opt.optimizer.param_groups:
                group["lr"] = rate
            with autocast(x.device, opt.amp_dtype):
                loss = task.loss(model(x).float(), y)
            opt.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            opt.optimizer.step()
            value = loss.item()  # one wait per step: a range test reads every loss
            rates.append(rate)
            losses.append(value)
            average = SMOOTHING * average + (1 - SMOOTHING) * value
            smoothed.append(average / (1 - SMOOTHING ** len(rates)))
            best = min(best, smoothed[-1])
            if not math.isfinite(value) or smoothed[-1] > DIVERGED * best:
                stopped = f"diverged at rate {rate:.2e} (the smoothed loss past {DIVERGED:g}x its minimum)"
                break
            if len(rates) == steps:
                break
        if stopped != "every step taken":
            break
    steepest, minimum = suggestion(rates, smoothed)
    return RangeTest(rates, losses, smoothed, steepest, minimum, stopped)


def suggestion(rates: list[float], smoothed: list[float]) -> tuple[float, float]:
    """The steepest descent's rate (the most negative slope of the smoothed loss against log(rate),
    the first tenth of the steps, still settling, and the last ones, diverging, left out) and the
    rate of the smoothed minimum."""
    values = np.array(smoothed, dtype=np.float64)
    finite = np.isfinite(values)
    rates_kept, values = np.array(rates)[finite], values[finite]
    if len(values) < 5:
        last = rates[-1]
        raise TochaError(f"the range test stopped (its loss diverging) after {len(rates)} step(s), at "
                         f"rate {last:.2g}: too few to suggest a rate; give a --start-lr well below "
                         f"{last:.2g}, or more --steps")  # fmt: skip
    lowest = int(values.argmin())
    slopes = np.gradient(values, np.log(rates_kept))
    start = max(1, len(values) // 10)
    window = slopes[start : max(start + 1, lowest + 1)]  # descending part, before the minimum
    steepest = start + int(window.argmin())
    return float(rates_kept[steepest]), float(rates_kept[lowest])


def write_range_test(result: RangeTest, folder: Path, title: str) -> None:
    """lr_find.png (the curve, log axis, the suggestion marked), lr_find.csv and lr_find.json."""
    from tocha.figures.plots import plot_lr_find

    folder.mkdir(parents=True, exist_ok=True)
    picture = plot_lr_find(result.rates, result.losses, result.smoothed, result.suggested, title=title)
    atomic_write(folder / "lr_find.png", lambda f: f.write(picture))
    steps = zip(result.rates, result.losses, result.smoothed, strict=True)
    rows = "".join(f"{rate!r},{loss!r},{smooth!r}\n" for rate, loss, smooth in steps)
    atomic_write_text(folder / "lr_find.csv", "lr,loss,smoothed_loss\n" + rows)
    record = {"suggested_lr": result.suggested, "safe_range": list(result.safe_range),
              "rule": "the smaller of the steepest descent of the smoothed loss and the minimum's rate / 10",
              "steepest_lr": result.steepest, "minimum_lr": result.minimum_rate,
              "minimum_lr_over_10": result.minimum_rate / 10, "steps": len(result.rates),
              "stopped": result.stopped}  # fmt: skip
    atomic_write_text(folder / "lr_find.json", json.dumps(record, indent=2) + "\n")
