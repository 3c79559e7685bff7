"""The head contract, for every registered model: the classifier is found, it produces the outputs,
and replacing it changes the number of classes and nothing else."""

from __future__ import annotations

import pytest
import torch
from model_inputs import build, inputs
from torch import nn

from tocha.models import get_classifier, list_models, reset_classifier


@pytest.mark.parametrize("log_softmax", [False, True])
@pytest.mark.parametrize("name", sorted(list_models()))
def test_every_model_has_a_replaceable_classifier(name, log_softmax):
    torch.manual_seed(0)
    model = build(name, (3, 32, 32), 10, log_softmax=log_softmax).eval()
    head = get_classifier(model)
    assert isinstance(head, nn.Linear) and head.out_features == 10

    # It is the layer the outputs come from: its output, through the head, is the model's.
    captured = {}
    head.register_forward_hook(lambda _m, _inp, out: captured.setdefault("out", out))
    x = inputs(name, 2, (3, 32, 32))
    out = model(x)
    expected = captured["out"].log_softmax(dim=1) if log_softmax else captured["out"]
    torch.testing.assert_close(out, expected)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = reset_classifier(model, 4)
    assert get_classifier(model) is new and new.out_features == 4 and new.in_features == head.in_features
    assert model(x).shape == (2, 4)
    after = model.state_dict()
    changed = {k for k in before if k not in after or not torch.equal(before[k], after[k])}
    assert changed and all(k.rsplit(".", 1)[0] in _names_of(model, new) for k in changed)
    if log_softmax:  # the NLLLoss head still ends the model
        assert torch.allclose(model(x).exp().sum(dim=1), torch.ones(2))


def _names_of(model: nn.Module, layer: nn.Module) -> set[str]:
    return {name for name, module in model.named_modules() if module is layer}
