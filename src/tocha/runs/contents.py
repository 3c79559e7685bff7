"""What a trained file must hold to be used, whatever kind it is: one validation, made when it is read.

Class names that are names; an input shape of three positive sizes within bounds (an image side of
at most 4,096 pixels: a declared 40000x40000 would make every prediction resize to 1.6 gigapixels);
one finite mean and positive std per channel; finite weights; and for a table, a record of the kind
tocha writes, its task's part included (a regression's target scale: finite, std above 0).
"""

from __future__ import annotations

import math
from typing import Any

from tocha.config_fields import MAX_SIDE
from tocha.data.table_record import table_problem

MAX_CHANNELS = 100_000  # a table's features are channels: ten times the widest sensible one-hot table


def contents_problem(
    classes: Any, shape: Any, norm: Any, weights: dict[str, Any] | None, *, table: Any = None
) -> str | None:
    """What makes a trained file's contents unusable, or None."""
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        return "its class names are not a list of names"
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        return f"image shape {shape} is not three positive sizes"
    if shape[0] > MAX_CHANNELS or max(shape[1:]) > MAX_SIDE:
        return f"image shape {shape} is beyond what tocha reads ({MAX_SIDE} pixels a side)"
    mean, std = (norm.get("mean"), norm.get("std")) if isinstance(norm, dict) else (None, None)
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == shape[0]):
        return f"normalisation {norm} does not have one mean and std per channel"
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in mean + std) or min(std) <= 0:
        return f"normalisation {norm} holds a non-finite value or a std that is not positive"
    return table_problem(table, shape[0]) or weights_problem(weights)


def weights_problem(weights: dict[str, Any] | None) -> str | None:
    if not weights:
        return None
    import torch  # only where there are tensors to look at

    for name, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor):
            return f"weight {name} is not a tensor"
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"weight {name} holds NaN or infinite values"
    return None
