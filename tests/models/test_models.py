"""Every registered model: shapes, gradients, options, errors; `linear` against plain torch."""

from __future__ import annotations

import math

import pytest
import torch
from model_inputs import TEXT_SHAPE, VOCAB, build, inputs
from torch import nn

from tocha.config import ModelConfig
from tocha.errors import TochaError
from tocha.models import create_model, list_models, model_options
from tocha.models.architecture import Architecture
from tocha.models.layers import ACTIVATIONS
from tocha.models.registry import reads_text

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 48)]


def test_registry_lists_the_families_with_descriptions() -> None:
    models = list_models()
    assert {"linear", "mlp", "tinyvgg"} <= set(models)
    assert all(desc.strip() for desc in models.values())


@pytest.mark.parametrize("in_shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(list_models()))
def test_forward_and_backward(name: str, in_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = build(name, in_shape, 10)
    x = inputs(name, 4, in_shape)
    out = model(x)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    params = list(model.parameters())
    assert params
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape
        assert torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize(
    ("in_shape", "hidden_units"),
    [((1, 28, 28), 10), ((3, 32, 32), 8), ((3, 64, 48), 5), ((1, 30, 17), 4), ((2, 6, 10), 3)],
)
def test_tinyvgg_classifier_input_size(in_shape: tuple[int, int, int], hidden_units: int) -> None:
    model = create_model("tinyvgg", in_shape, 7, hidden_units=hidden_units)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1
    _, height, width = in_shape
    assert linears[0].in_features == hidden_units * (height // 4) * (width // 4)
    assert linears[0].out_features == 7
    assert model(torch.zeros(2, *in_shape)).shape == (2, 7)


def test_tinyvgg_too_small_images_is_a_tocha_error() -> None:
    with pytest.raises(TochaError, match="4x4"):
        create_model("tinyvgg", (1, 3, 3), 10)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_activations(act: str) -> None:
    model = create_model("mlp", (1, 6, 6), 4, hidden_sizes=[8, 5], activation=act)
    layers = list(model)
    assert [type(m) for m in layers] == [
        nn.Flatten,
        nn.Linear,
        ACTIVATIONS[act],
        nn.Linear,
        ACTIVATIONS[act],
        nn.Linear,
    ]
    assert [m.out_features for m in layers if isinstance(m, nn.Linear)] == [8, 5, 4]
    assert model(torch.randn(3, 1, 6, 6)).shape == (3, 4)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_tinyvgg_activations(act: str) -> None:
    model = create_model("tinyvgg", (1, 8, 8), 3, hidden_units=2, activation=act)
    assert sum(isinstance(m, ACTIVATIONS[act]) for m in model.modules()) == 4


@pytest.mark.parametrize("name", sorted(list_models()))
def test_log_softmax_rows_are_log_probabilities(name: str) -> None:
    torch.manual_seed(1)
    model = build(name, (1, 8, 8), 5, log_softmax=True).eval()
    out = model(inputs(name, 6, (1, 8, 8), scale=5))
    assert (out <= 0).all()
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(6))


def test_log_softmax_is_log_softmax_of_the_logits() -> None:
    torch.manual_seed(2)
    with_ls = create_model("mlp", (1, 4, 4), 3, log_softmax=True)
    without = create_model("mlp", (1, 4, 4), 3, log_softmax=False)
    with torch.no_grad():  # same parameters in the same order; LogSoftmax adds none
        for dst, src in zip(without.parameters(), with_ls.parameters(), strict=True):
            dst.copy_(src)
    x = torch.randn(5, 1, 4, 4)
    torch.testing.assert_close(with_ls(x), torch.log_softmax(without(x), dim=1))


def test_unknown_model_lists_the_models() -> None:
    with pytest.raises(TochaError, match="resnet9000") as e:
        create_model("resnet9000", (1, 28, 28), 10)
    for name in list_models():
        assert name in str(e.value)


def test_unknown_activation_lists_the_activations() -> None:
    with pytest.raises(TochaError, match="swishy") as e:
        create_model("tinyvgg", (1, 28, 28), 10, activation="swishy")
    for name in ACTIVATIONS:
        assert name in str(e.value)


@pytest.mark.parametrize(
    ("name", "option"),
    [
        ("linear", "hidden_units"),
        ("linear", "activation"),
        ("mlp", "hidden_units"),
        ("tinyvgg", "hidden_sizes"),
    ],
)
def test_unknown_option_lists_the_valid_ones(name: str, option: str) -> None:
    with pytest.raises(TochaError, match=option) as e:
        create_model(name, (1, 28, 28), 10, **{option: 5})
    for valid in model_options(name):
        assert valid in str(e.value)


def test_model_options() -> None:
    assert model_options("linear") == ["log_softmax"]
    assert set(model_options("mlp")) == {"hidden_sizes", "activation", "log_softmax"}
    assert set(model_options("tinyvgg")) == {"hidden_units", "activation", "log_softmax"}


def test_none_kwargs_mean_defaults() -> None:
    torch.manual_seed(3)
    a = create_model("linear", (1, 28, 28), 10, hidden_units=None, activation=None, log_softmax=None)
    assert isinstance(a[-1], nn.Linear)  # no LogSoftmax: the default
    b = create_model("tinyvgg", (1, 28, 28), 10, hidden_units=None, hidden_sizes=None)
    linear = [m for m in b.modules() if isinstance(m, nn.Linear)][0]
    assert linear.in_features == 10 * 7 * 7  # default hidden_units=10


def test_model_from_default_config() -> None:
    for name in list_models():
        if reads_text(name):  # token ids: rows of ids of a vocabulary
            text = Architecture(ModelConfig(name=name), TEXT_SHAPE, 10, rows=True, integer=True, vocab=VOCAB)
            assert text.build()(text.zeros(2)).shape == (2, 10)
            continue
        model = Architecture(ModelConfig(name=name), (1, 28, 28), 10).build()
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # two: a batch norm's statistics in training


@pytest.mark.parametrize("in_shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_linear_matches_plain_torch(in_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(4)
    model = create_model("linear", in_shape, 10)
    (ours,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (ours.in_features, ours.out_features) == (math.prod(in_shape), 10)
    reference = nn.Linear(math.prod(in_shape), 10)
    with torch.no_grad():
        reference.weight.copy_(ours.weight)
        reference.bias.copy_(ours.bias)
    x = torch.randn(4, *in_shape)
    torch.testing.assert_close(model(x), reference(x.reshape(4, -1)))
    torch.testing.assert_close(model(x), x.reshape(4, -1) @ ours.weight.T + ours.bias)


def test_mlp_checks_the_activation_name_even_without_hidden_layers():
    with pytest.raises(TochaError, match="activation"):
        create_model("mlp", (1, 28, 28), 10, hidden_sizes=[], activation="bogus")


@pytest.mark.parametrize("name", sorted(list_models()))
def test_log_softmax_head_keeps_the_weight_names(name):
    """Weights trained with one head load into the other: the LogSoftmax adds no parameters."""
    plain = build(name, (1, 28, 28), 10)
    with_head = build(name, (1, 28, 28), 10, log_softmax=True)
    with_head.load_state_dict(plain.state_dict())  # raises if the names differ
    plain.eval(), with_head.eval()  # dropout (mobilenet_v2's) off: the same outputs
    x = inputs(name, 3, (1, 28, 28)).abs()
    torch.testing.assert_close(with_head(x), torch.log_softmax(plain(x), dim=1))
