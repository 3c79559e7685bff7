"""The head contract: a model ends in one classifier that can be found, read and replaced (as timm's
`get_classifier` / `reset_classifier`), which fine-tuning and `--freeze backbone` need.

The head is what the model's own `get_classifier()` returns, when it has one (timm's convention);
else the last `nn.Linear` in the model's module order. A LogSoftmax after it (the NLLLoss head)
has no weights and stays where it is. The registry's test checks the contract for every registered
model, and a user's model is told which layer was taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tocha.errors import TochaError

if TYPE_CHECKING:
    from torch import nn


def head_of(model: nn.Module) -> tuple[str, str]:
    """The dotted name of the head layer (`classifier.1` for tinyvgg, `3` for mlp) and how it was
    found: `get_classifier()` or `the last nn.Linear`."""
    from torch import nn

    own = getattr(model, "get_classifier", None)
    if callable(own):
        head = own()
        found = next((name for name, module in model.named_modules() if module is head), None)
        if not isinstance(head, nn.Module) or not found:
            raise TochaError(
                f"{type(model).__name__}.get_classifier() returned {type(head).__name__}, "
                "not one of its layers"
            )
        return found, "get_classifier()"
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise TochaError(
            f"{type(model).__name__} has no nn.Linear layer to take for its head "
            "(define get_classifier() returning the head layer)"
        )
    return names[-1], "the last nn.Linear"


def classifier_name(model: nn.Module) -> str:
    """The dotted name of the head layer."""
    return head_of(model)[0]


def get_classifier(model: nn.Module) -> nn.Module:
    """The head layer: (features) -> (classes)."""
    return model.get_submodule(classifier_name(model))


def reset_classifier(model: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the head by a freshly initialised Linear with `num_classes` outputs, on the same device
    and dtype; every other weight is kept. Returns the new layer."""
    from torch import nn

    name = classifier_name(model)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise TochaError(
            f"{type(model).__name__}'s head {name} is a {type(old).__name__}; a new head for "
            "other classes replaces an nn.Linear"
        )
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return new
