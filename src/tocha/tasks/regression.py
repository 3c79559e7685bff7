"""Regression: one number per example; losses MSE, L1 and Huber; metrics MSE, RMSE, MAE and R².

The model learns the standardised target, (y - mean) / std with the training targets' mean and std
(so one learning rate serves prices in thousands and targets near 1): the training split's targets
are standardised once (`prepare`), the loss and the running sums are on that scale, and the metrics
are turned into the target's own units once per epoch. The inference model turns the model's
outputs back into those units (`output_layer`), so `evaluate` takes predictions and targets in them.

Like classification it keeps an epoch's sums on the device (no wait per step) and computes the
metrics once from them: R² = 1 - SSE / SST needs the targets' sum and sum of squares as well.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tocha.errors import TochaError
from tocha.tasks.base import Evaluation, Target, Task, register_task

if TYPE_CHECKING:
    import torch
    from torch import nn

LOSSES = ("mse", "l1", "huber")


def make_regression_loss(name: str):  # noqa: ANN201 - a loss function
    """`mse` (mean squared error), `l1` (mean absolute error), `huber` (smooth L1, delta 1)."""
    from torch.nn import functional as F

    losses = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}
    if name not in losses:
        raise TochaError(f"loss {name!r} is not a regression loss; choose from {', '.join(LOSSES)}")
    loss = losses[name]
    return lambda outputs, targets: loss(outputs.reshape(-1), targets.reshape(-1).to(outputs.dtype))


def target_scale(values: np.ndarray) -> list[float]:
    """The training targets' mean and std (1 where they are constant): the scale the model learns on."""
    y = values.astype(np.float64)
    return [float(y.mean()), float(y.std()) or 1.0]


@register_task
class RegressionTask(Task):
    name = "regression"
    losses = LOSSES
    metrics = ("loss", "mse", "rmse", "mae", "r2")
    primary = "r2"  # higher is better
    lower_is_better = ("loss", "mse", "rmse", "mae")
    bounds = (-math.inf, 1.0)
    result_figure = ("predictions.png", "Predictions")

    def __init__(self, loss: str = "mse", mean: float = 0.0, std: float = 1.0, label_smoothing: float = 0.0,
                 *, target: str = "target", class_weights: list[float] | None = None) -> None:  # fmt: skip
        super().__init__(loss, label_smoothing, class_weights)
        self.mean, self.std = float(mean), float(std)
        self.target = target  # the target column's name, for figures' axes

    @classmethod
    def build(cls, loss: str, label_smoothing: float, table: dict[str, Any] | None,
              class_weights: list[float] | None = None) -> RegressionTask:  # fmt: skip
        mean, std = table["target_scale"] if table else (0.0, 1.0)
        return cls(
            loss,
            mean,
            std,
            label_smoothing,
            target=table["target"] if table else "target",
            class_weights=class_weights,
        )

    def make_loss(self, name: str, label_smoothing: float) -> Any:
        return make_regression_loss(name)  # (outputs, targets), both on the standardised scale

    def given_loss(self, loss: Any) -> Any:
        """A loss given in Python gets the targets shaped as the outputs: (B, outputs), standardised
        (nn.MSELoss would broadcast (B, 1) against (B,) into a (B, B) mean)."""
        return lambda outputs, targets: loss(outputs, targets.reshape(outputs.shape).to(outputs.dtype))

    # -- the data
    def read_target(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str) -> Target:
        if numbers is None:
            raise TochaError(f"{where}: the target {column!r} is text; regression needs numbers")
        if numbers.std() == 0:
            raise TochaError(f"{where}: the target {column!r} is constant ({numbers[0]:g}): nothing to learn")
        return Target(numbers.astype(np.float32), [column])

    def read_labels(self, cells: list[str], numbers: np.ndarray | None, column: str, where: str,
                    *, classes: list[str]) -> np.ndarray:  # fmt: skip
        """The numbers as they are: rows with one value are fine to evaluate on (or to read a chunk
        of a table at a time)."""
        if numbers is None:
            raise TochaError(f"{where}: the target {column!r} is text; regression needs numbers")
        return numbers.astype(np.float32)

    def output_size(self, classes: list[str]) -> int:
        return len(classes)  # the targets' names: a table's one column, or K numbers given in Python

    def table_info(self, train_labels: np.ndarray) -> dict[str, Any]:
        return {"target_scale": target_scale(train_labels)}

    @classmethod
    def table_problem(cls, table: dict[str, Any]) -> str | None:
        scale = table.get("target_scale")
        if not (isinstance(scale, list) and len(scale) == 2 and all(isinstance(v, int | float) for v in scale)
                and all(math.isfinite(v) for v in scale) and scale[1] > 0):  # fmt: skip
            return f"its target scale {scale!r} is not a finite mean and a std above 0"
        return None

    def prepare(self, targets: torch.Tensor) -> torch.Tensor:
        """Training targets as the model learns them: standardised, once, before the first epoch."""
        return (targets - self.mean) / self.std

    # -- training
    def new_sums(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Summed loss, squared and absolute errors, targets and squared targets (standardised), in
        float32: Apple's MPS has no float64, and each batch's sums are added (not each sample's)."""
        import torch

        return {"totals": torch.zeros(5, dtype=torch.float32, device=device)}

    def add(self, sums: dict[str, torch.Tensor], loss: torch.Tensor, outputs: torch.Tensor,
            targets: torch.Tensor) -> None:  # fmt: skip
        """One batch, both on the standardised scale (the model's outputs, `prepare`d targets): the
        sums in one stacked add, the units restored once per epoch in `summarize`."""
        import torch

        z = targets.reshape(-1)
        error = outputs.detach().reshape(-1) - z
        batch = (
            loss.detach() * len(outputs),
            (error * error).sum(),
            error.abs().sum(),
            z.sum(),
            (z * z).sum(),
        )
        sums["totals"].add_(torch.stack(batch))
        if (
            outputs.ndim == 2 and outputs.shape[1] > 1
        ):  # several outputs: each one's spread about its own mean
            columns = targets.reshape(len(outputs), -1)
            each = torch.stack((columns.sum(0), (columns * columns).sum(0)))
            sums["columns"] = sums["columns"] + each if "columns" in sums else each

    def summarize(self, sums: dict[str, torch.Tensor], samples: int) -> dict[str, float]:
        loss_sum, squared, absolute, total, squares = sums["totals"].tolist()
        spread = squares - total**2 / samples  # sum of (z - mean z)^2: R² is the same on either scale
        values = samples
        if "columns" in sums:  # K outputs: R² over them all, each about its own mean (variance-weighted)
            totals, squares_each = sums["columns"].double()
            spread, values = float((squares_each - totals**2 / samples).sum()), samples * len(totals)
        mse = self.std**2 * squared / values  # per value: a row of K outputs holds K
        return {"loss": loss_sum / samples, "mse": mse, "rmse": math.sqrt(mse),
                "mae": self.std * absolute / values,
                "r2": 1 - squared / spread if spread > 0 else math.nan}  # fmt: skip

    # -- results
    def evaluate(self, predictions: torch.Tensor, targets: torch.Tensor) -> Evaluation:
        """A whole split: `predictions` and `targets` in the target's units (what the inference
        model gives and the test split holds)."""
        outputs, z = (predictions.float() - self.mean) / self.std, self.prepare(targets.float())
        sums = self.new_sums(predictions.device)
        self.add(sums, self.loss(outputs, z), outputs, z)
        return Evaluation(self.summarize(sums, len(targets)), len(targets), predictions.reshape(-1),
                          targets.reshape(-1))  # fmt: skip

    def headline(self, evaluation: Evaluation) -> str:
        return (f"RMSE {evaluation.rmse:.4g}, MAE {evaluation.mae:.4g}, R² {evaluation.r2:.4f}, "
                f"loss {evaluation.loss:.4f}")  # fmt: skip

    def epoch_scores(self, row: dict[str, float], split: str) -> str:
        return f"rmse {row[f'{split}_rmse']:.4g} r2 {row[f'{split}_r2']:.3f}"

    def score_text(self, value: float) -> str:
        return f"test R² {value:.4f}"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        return f"{split} R² (mean ± std)", 1.0, 4

    def failed_to_learn(self, mean: float, classes: int) -> str:
        return "failed to learn: R² <= 0, no better than predicting the mean" if mean <= 0 else ""

    def classes_counted(self, classes: list[str]) -> int:
        return 0  # its one name is the target's

    def curve_axis(self) -> tuple[float, str]:
        return 1.0, "R2"

    def result_picture(self, evaluation: Evaluation, classes: list[str], title: str) -> bytes:
        """Predicted against true, and the residuals."""
        from tocha.figures.plots import plot_predictions

        predicted, true = evaluation.outputs.cpu().numpy(), evaluation.labels.cpu().numpy()
        return plot_predictions(predicted, true, title, classes[0])

    # -- a trained model's answers
    def output_layer(self) -> nn.Module:
        from tocha.tasks.layers import Affine

        return Affine(self.std, self.mean)  # (N, 1) in the target's units

    def output_words(self) -> str:
        return "predictions (N, 1), float32, in the target's own units"

    def answers(self, outputs: np.ndarray, classes: list[str], top_k: int) -> list[Any]:
        """Each row's predicted value, in the target's units (K values: a list of them)."""
        rows = outputs.reshape(len(outputs), -1)
        if rows.shape[1] > 1:
            return [[float(v) for v in row] for row in rows]
        return [float(v) for v in rows[:, 0]]

    def answer_key(self, classes: list[str]) -> str:
        return classes[0]  # the target's name

    def answer_text(self, answer: Any) -> str:
        return ", ".join(f"{v:.6g}" for v in answer) if isinstance(answer, list) else f"{answer:.6g}"
