"""Regression: one number per example; losses MSE, L1 and Huber; metrics MSE, RMSE, MAE and R².

Like classification it keeps an epoch's sums on the device (no wait per step) and computes the
metrics once from them: R² = 1 - SSE / SST needs the targets' sum and sum of squares as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from tocha.errors import TochaError

LOSSES = ("mse", "l1", "huber")


def make_regression_loss(name: str):  # noqa: ANN201 - a loss function
    """`mse` (mean squared error), `l1` (mean absolute error), `huber` (smooth L1, delta 1)."""
    losses = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}
    if name not in losses:
        raise TochaError(f"loss {name!r} is not a regression loss; choose from {', '.join(LOSSES)}")
    loss = losses[name]
    return lambda outputs, targets: loss(outputs.reshape(-1), targets.reshape(-1).to(outputs.dtype))


@dataclass
class RegressionEvaluation:
    loss: float
    mse: float
    mae: float
    r2: float
    samples: int

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "mse": self.mse, "rmse": self.rmse, "mae": self.mae, "r2": self.r2}


class RegressionTask:
    metrics = ("loss", "mse", "rmse", "mae", "r2")
    primary = "r2"  # higher is better

    def __init__(self, loss: str = "mse") -> None:
        self.loss_name = loss
        self.loss = make_regression_loss(loss)

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        names = ("loss_sum", "squared_error", "absolute_error", "target_sum", "target_squares")
        return {name: torch.zeros((), dtype=torch.float64, device=device) for name in names}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            targets: torch.Tensor) -> None:  # fmt: skip
        error = outputs.reshape(-1).double() - targets.reshape(-1).double()
        y = targets.reshape(-1).double()
        sums["loss_sum"].add_(loss.double() * len(y))
        sums["squared_error"].add_((error * error).sum())
        sums["absolute_error"].add_(error.abs().sum())
        sums["target_sum"].add_(y.sum())
        sums["target_squares"].add_((y * y).sum())

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        v = {name: value.item() for name, value in sums.items()}
        total = v["target_squares"] - v["target_sum"] ** 2 / samples  # sum of (y - mean)^2
        mse = v["squared_error"] / samples
        return {"loss": v["loss_sum"] / samples, "mse": mse, "rmse": math.sqrt(mse),
                "mae": v["absolute_error"] / samples,
                "r2": 1 - v["squared_error"] / total if total > 0 else math.nan}  # fmt: skip

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor) -> RegressionEvaluation:
        sums = self.new_sums(outputs.device)
        self.add(sums, self.loss(outputs.float(), targets), outputs, targets)
        m = self.summarize(sums, len(targets))
        return RegressionEvaluation(m["loss"], m["mse"], m["mae"], m["r2"], len(targets))
