"""Building blocks shared by the model families: activations by name and the classifier head."""

from __future__ import annotations

from torch import nn

from tocha.errors import TochaError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise TochaError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


def head(in_features: int, num_classes: int, log_softmax: bool) -> nn.Module:
    """The final Linear, followed by LogSoftmax when the loss is NLLLoss (which expects log-probs)."""
    linear = nn.Linear(in_features, num_classes)
    return nn.Sequential(linear, nn.LogSoftmax(dim=1)) if log_softmax else linear
