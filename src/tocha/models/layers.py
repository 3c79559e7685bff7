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


def head_layers(in_features: int, num_classes: int, log_softmax: bool) -> list[nn.Module]:
    """The final Linear, then LogSoftmax when the loss is NLLLoss (which expects log-probs).

    Returned as a list to splice into the parent Sequential, so the Linear's weights have the
    same name with or without the LogSoftmax.
    """
    linear = nn.Linear(in_features, num_classes)
    return [linear, nn.LogSoftmax(dim=1)] if log_softmax else [linear]
