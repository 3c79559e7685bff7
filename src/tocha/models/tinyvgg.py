"""`tinyvgg`: the TinyVGG of the CNN Explainer and the learnpytorch course.

Two blocks of [conv3x3 -> act -> conv3x3 -> act -> maxpool2], then a Linear classifier. The
classifier's input size is derived from the input shape by running the blocks once, instead of
being hard-coded (`hidden_units*7*7` holds for 28x28 inputs only). The network is the `TinyVGG`
class of `models.layers`.
"""

from __future__ import annotations

from typing import Any

from tocha.config_fields import at_least
from tocha.models.registry import ACTIVATION, LOG_SOFTMAX, ModelOption, register_model


@register_model(
    hidden_units=ModelOption("channels of every conv layer", check=at_least(1)),
    activation=ACTIVATION,
    log_softmax=LOG_SOFTMAX,
)
def tinyvgg(
    in_shape: tuple[int, int, int],
    num_classes: int,
    hidden_units: int = 10,
    activation: str = "relu",
    *,
    log_softmax: bool = False,
) -> Any:
    """TinyVGG CNN: two conv blocks of `hidden_units` channels + a Linear classifier."""
    from tocha.models.layers import TinyVGG

    return TinyVGG(in_shape, num_classes, hidden_units, activation, log_softmax=log_softmax)
