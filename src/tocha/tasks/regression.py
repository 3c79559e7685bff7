"""Regression: one number per example; losses MSE, L1 and Huber; metrics MSE, RMSE, MAE and R².

The model learns the standardised target, (y - mean) / std with the training targets' mean and std
(so one learning rate serves prices in thousands and targets near 1): the training split's targets
are standardised once (`prepare`), the loss and the running sums are on that scale, and the metrics
are turned into the target's own units once per epoch. The inference model turns the model's
outputs back into those units (`InferenceModel`), so `evaluate` takes predictions and targets in
them.

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
        self.loss = make_regression_loss(loss)  # (outputs, targets), both on the standardised scale

    def prepare(self, targets: torch.Tensor) -> torch.Tensor:
        """Training targets as the model learns them: standardised, once, before the first epoch."""
        return (targets - self.mean) / self.std

    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Summed loss, squared and absolute errors, targets and squared targets (standardised)."""
        return {"totals": torch.zeros(5, dtype=torch.float64, device=device)}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            targets: torch.Tensor) -> None:  # fmt: skip
        """One batch, both on the standardised scale (the model's outputs, `prepare`d targets): the
        sums in one stacked add, the units restored once per epoch in `summarize`."""
        z = targets.reshape(-1)
        error = outputs.detach().reshape(-1) - z
        batch = (loss.detach() * len(z), (error * error).sum(), error.abs().sum(), z.sum(), (z * z).sum())
        sums["totals"].add_(torch.stack(batch))

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        loss_sum, squared, absolute, total, squares = sums["totals"].tolist()
        spread = squares - total**2 / samples  # sum of (z - mean z)^2: R² is the same on either scale
        mse = self.std**2 * squared / samples
        return {"loss": loss_sum / samples, "mse": mse, "rmse": math.sqrt(mse),
                "mae": self.std * absolute / samples,
                "r2": 1 - squared / spread if spread > 0 else math.nan}  # fmt: skip

    def evaluate(self, predictions: torch.Tensor, targets: torch.Tensor) -> RegressionEvaluation:
        """A whole split: `predictions` and `targets` in the target's units (what the inference
        model gives and the test split holds)."""
        outputs, z = (predictions.float() - self.mean) / self.std, self.prepare(targets.float())
        sums = self.new_sums(predictions.device)
        self.add(sums, self.loss(outputs, z), outputs, z)
        m = self.summarize(sums, len(targets))
        return RegressionEvaluation(m["loss"], m["mse"], m["mae"], m["r2"], len(targets),
                                    predictions.reshape(-1).cpu(), targets.reshape(-1).cpu())  # fmt: skip
