"""The head contract: every registered model ends in one Linear classifier that can be found,
read and replaced (as timm's `get_classifier` / `reset_classifier`), which fine-tuning needs.

The classifier is the last `nn.Linear` in the model's module order; a LogSoftmax after it (the
NLLLoss head) has no weights and stays where it is. The registry's test checks the contract for
every registered model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tocha.errors import TochaError

if TYPE_CHECKING:
    from torch import nn


def classifier_name(model: nn.Module) -> str:
    """The dotted name of the classifier layer, e.g. `classifier.1` for tinyvgg, `3` for mlp."""
    from torch import nn

    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise TochaError(f"{type(model).__name__} has no Linear classifier")
    return names[-1]


def get_classifier(model: nn.Module) -> nn.Linear:
    """The final Linear layer: (features) -> (classes)."""
    return model.get_submodule(classifier_name(model))  # type: ignore[return-value]


def reset_classifier(model: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the classifier by a freshly initialised Linear with `num_classes` outputs, on the
    same device and dtype; every other weight is kept. Returns the new layer."""
    from torch import nn

    name = classifier_name(model)
    old = model.get_submodule(name)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return new
