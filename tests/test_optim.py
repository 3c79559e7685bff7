"""make_optimizer, make_loss and the schedules against torch's own classes: every option has an
effect a test can see, and that effect is torch's."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tocha.config import TrainConfig
from tocha.errors import TochaError
from tocha.tasks.classification import make_loss
from tocha.training.optimizers import make_optimizer
from tocha.training.schedules import make_scheduler


def _steps(optimizer_of, steps: int = 5) -> torch.Tensor:
    """The weights of a small linear model after `steps` steps on fixed data."""
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    optimizer = optimizer_of(model.parameters())
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


OPTIONS = [
    dict(optimizer="sgd", lr=0.1, momentum=0.0),
    dict(optimizer="sgd", lr=0.1, momentum=0.9),
    dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True),
    dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.1),
    dict(optimizer="adam", lr=0.01),
    dict(optimizer="adam", lr=0.01, weight_decay=0.1),
    dict(optimizer="adamw", lr=0.01, weight_decay=0.1),
]
TORCH = {
    "sgd": lambda p, o: torch.optim.SGD(
        p, lr=o["lr"], momentum=o["momentum"], nesterov=o.get("nesterov", False),
        weight_decay=o.get("weight_decay", 0.0)
    ),
    "adam": lambda p, o: torch.optim.Adam(p, lr=o["lr"], weight_decay=o.get("weight_decay", 0.0)),
    "adamw": lambda p, o: torch.optim.AdamW(p, lr=o["lr"], weight_decay=o.get("weight_decay", 0.0)),
}  # fmt: skip


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_make_optimizer_steps_as_torch_does(options):
    ours = _steps(lambda p: make_optimizer(p, TrainConfig(**options), torch.device("cpu")))
    theirs = _steps(lambda p: TORCH[options["optimizer"]](p, options))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("without", "with_"),
    [
        (dict(optimizer="sgd", momentum=0.9), dict(optimizer="sgd", momentum=0.9, nesterov=True)),
        (dict(optimizer="sgd", momentum=0.9), dict(optimizer="sgd", momentum=0.9, weight_decay=0.1)),
        (dict(optimizer="sgd", momentum=0.0), dict(optimizer="sgd", momentum=0.9)),
        (dict(optimizer="adam"), dict(optimizer="adam", weight_decay=0.1)),
        (dict(optimizer="adam", weight_decay=0.1), dict(optimizer="adamw", weight_decay=0.1)),
    ],
)
def test_each_optimizer_option_changes_the_weights(without, with_):
    a = _steps(lambda p: make_optimizer(p, TrainConfig(lr=0.05, **without)))
    b = _steps(lambda p: make_optimizer(p, TrainConfig(lr=0.05, **with_)))
    assert (a - b).abs().max() > 1e-4


def test_weight_decay_shrinks_the_weights():
    plain = _steps(lambda p: make_optimizer(p, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0)), 20)
    decayed = _steps(
        lambda p: make_optimizer(p, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.5)), 20
    )
    assert decayed.norm() < plain.norm()


def test_nesterov_without_momentum_is_refused():
    with pytest.raises(TochaError, match="nesterov"):
        config = TrainConfig(optimizer="sgd", momentum=0.0, nesterov=True)
        make_optimizer(nn.Linear(2, 2).parameters(), config)


def test_losses_are_torchs():
    torch.manual_seed(0)
    out, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    torch.testing.assert_close(make_loss("cross_entropy")(out, y), nn.CrossEntropyLoss()(out, y))
    smooth = make_loss("cross_entropy", label_smoothing=0.2)(out, y)
    torch.testing.assert_close(smooth, nn.CrossEntropyLoss(label_smoothing=0.2)(out, y))
    assert not torch.isclose(smooth, make_loss("cross_entropy")(out, y))  # smoothing has an effect
    log_probs = out.log_softmax(dim=1)
    torch.testing.assert_close(make_loss("nll")(log_probs, y), nn.NLLLoss()(log_probs, y))
    one_hot = F.one_hot(y, 5).float()
    torch.testing.assert_close(make_loss("mse")(out, y), nn.MSELoss()(out.softmax(dim=1), one_hot))


def test_label_smoothing_is_refused_for_other_losses():
    with pytest.raises(TochaError, match="label_smoothing"):
        make_loss("nll", label_smoothing=0.1)


def _lrs(name: str, steps: int = 20, lr: float = 0.1, warmup: float = 0.25) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer, name, steps, warmup)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return seen


def test_each_schedule_follows_its_formula():
    n, lr = 20, 0.1
    assert _lrs("constant") == [lr] * n
    assert _lrs("linear") == pytest.approx([lr * (1 - k / n) for k in range(n)])
    assert _lrs("cosine") == pytest.approx([lr * 0.5 * (1 + math.cos(math.pi * k / n)) for k in range(n)])
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=lr, total_steps=n, pct_start=0.25, cycle_momentum=False
    )
    expected = []
    for _ in range(n):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        one_cycle.step()
    assert _lrs("onecycle") == pytest.approx(expected)


def test_onecycle_warms_up_for_its_fraction_then_anneals():
    lrs = _lrs("onecycle", steps=40, warmup=0.25)
    peak = lrs.index(max(lrs))
    assert peak == pytest.approx(0.25 * 40, abs=1) and lrs[0] < lrs[peak] / 10 and lrs[-1] < lrs[peak] / 100
    later = _lrs("onecycle", steps=40, warmup=0.5)
    assert later.index(max(later)) == pytest.approx(0.5 * 40, abs=1)  # the fraction has an effect
