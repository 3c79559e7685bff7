"""Regression: one number per example; losses MSE, L1 and Huber; metrics MSE, RMSE, MAE and R².

The model learns the standardised target, (y - mean) / std with the training targets' mean and std
(so one learning rate serves prices in thousands and targets near 1), and the loss is computed on
that scale; the metrics are in the target's own units. The inference model turns the model's
outputs back into those units (`InferenceModel`), so `evaluate` receives predictions, while the
training loop hands over the model's raw outputs: `add` and `evaluate` say which they take.

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
    predictions: torch.Tensor | None = None  # (N,) in the target's units, for the figures
    targets: torch.Tensor | None = None

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "mse": self.mse, "rmse": self.rmse, "mae": self.mae, "r2": self.r2}

    def headline(self) -> str:
        return f"RMSE {self.rmse:.4g}, MAE {self.mae:.4g}, R² {self.r2:.4f}, loss {self.loss:.4f}"


class RegressionTask:
    metrics = ("loss", "mse", "rmse", "mae", "r2")
    primary = "r2"  # higher is better

    def __init__(self, loss: str = "mse", mean: float = 0.0, std: float = 1.0) -> None:
        self.loss_name = loss
        self.mean, self.std = float(mean), float(std)
        self.scaled_loss = make_regression_loss(loss)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of the model's outputs (standardised scale) against targets (their own units)."""
        return self.scaled_loss(outputs, (targets - self.mean) / self.std)

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        names = ("loss_sum", "squared_error", "absolute_error", "target_sum", "target_squares")
        return {name: torch.zeros((), dtype=torch.float64, device=device) for name in names}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            targets: torch.Tensor) -> None:  # fmt: skip
        """One training batch: `outputs` are the model's, on the standardised scale."""
        predictions = outputs.detach().reshape(-1).double() * self.std + self.mean
        y = targets.reshape(-1).double()
        error = predictions - y
        sums["loss_sum"].add_(loss.detach().double() * len(y))
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

    def evaluate(self, predictions: torch.Tensor, targets: torch.Tensor) -> RegressionEvaluation:
        """A whole split: `predictions` in the target's units (what the inference model gives)."""
        outputs = (predictions.float() - self.mean) / self.std
        sums = self.new_sums(predictions.device)
        self.add(sums, self.loss(outputs, targets), outputs, targets)
        m = self.summarize(sums, len(targets))
        return RegressionEvaluation(m["loss"], m["mse"], m["mae"], m["r2"], len(targets),
                                    predictions.reshape(-1).cpu(), targets.reshape(-1).cpu())  # fmt: skip
