"""The regression task's losses and metrics against torch's and scikit-learn's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tocha.errors import TochaError
from tocha.tasks.regression import RegressionTask, make_regression_loss

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_losses_are_torchs():
    torch.manual_seed(0)
    out, y = torch.randn(16, 1) * 3, torch.randn(16)
    torch.testing.assert_close(make_regression_loss("mse")(out, y), nn.MSELoss()(out.squeeze(1), y))
    torch.testing.assert_close(make_regression_loss("l1")(out, y), nn.L1Loss()(out.squeeze(1), y))
    torch.testing.assert_close(make_regression_loss("huber")(out, y), nn.HuberLoss()(out.squeeze(1), y))
    with pytest.raises(TochaError, match="not a regression loss"):
        make_regression_loss("cross_entropy")


def test_metrics_from_sums_over_batches_equal_sklearns_on_the_whole():
    torch.manual_seed(1)
    y = torch.randn(103) * 5 + 2
    out = (y + torch.randn(103)).unsqueeze(1)
    task = RegressionTask("mse", mean=2.0, std=5.0)  # the model learns (y - 2) / 5
    sums = task.new_sums(torch.device("cpu"))
    z, outputs = task.prepare(y), (out - 2.0) / 5.0  # what the training loop hands over
    for start in range(0, 103, 10):  # batches of 10 and a last one of 3
        o, t = outputs[start : start + 10], z[start : start + 10]
        task.add(sums, task.loss(o, t), o, t)
    m = task.summarize(sums, 103)
    yn, pn = y.numpy(), out.squeeze(1).numpy()
    assert m["mse"] == pytest.approx(sklearn_metrics.mean_squared_error(yn, pn), rel=1e-6)
    assert m["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(yn, pn), rel=1e-6)
    assert m["r2"] == pytest.approx(sklearn_metrics.r2_score(yn, pn), rel=1e-6)
    # the loss is on the standardised scale: the MSE over std²
    assert m["rmse"] == pytest.approx(m["mse"] ** 0.5) and m["loss"] == pytest.approx(m["mse"] / 25, rel=1e-6)
    whole = task.evaluate(out, y)
    assert whole.metrics() == pytest.approx(m, rel=1e-6)
    assert task.evaluate(y.unsqueeze(1), y).r2 == pytest.approx(1.0)  # a perfect fit
