"""The GPU-oriented code paths (augmentation on the device, schedules, bf16 autocast,
channels_last, torch.compile, weight averaging, flip TTA), exercised on the CPU: same code, the
device passed in."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from trained_runs import train_quick

from tocha.data.normalize import Normalize
from tocha.devices import resolve_channels_last, resolve_device, resolve_precision
from tocha.errors import TochaError
from tocha.inference.evaluate import evaluate_checkpoint
from tocha.inference.model import InferenceModel
from tocha.inference.model import load_inference_model as restore
from tocha.models import create_model
from tocha.runs.checkpoint import load_checkpoint
from tocha.training.augment import Augment, random_flip, random_translate
from tocha.training.schedules import make_scheduler


def predict_logits(model, images, normalize, flip_tta=False):
    return InferenceModel(model, normalize, tta_flip=flip_tta).logits(images)


def test_translate_matches_a_per_image_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 9, 7)
    shifted = random_translate(x, 2, torch.Generator().manual_seed(0))
    dy, dx = torch.randint(0, 5, (2, 16, 1, 1), generator=g)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(16):  # the slow, obvious way: crop each padded image at its own offset
        a, b = int(dy[i]), int(dx[i])
        assert torch.equal(shifted[i], padded[i, :, a : a + 9, b : b + 7])
    assert not torch.equal(shifted, x)  # 25 offsets for 16 images: some moved


def test_flip_mirrors_about_half_the_batch():
    x = torch.rand(1000, 1, 4, 5)
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    mirrored = [torch.equal(f, o.flip(2)) for f, o in zip(flipped, x, strict=True)]
    kept = [torch.equal(f, o) for f, o in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 400 < sum(mirrored) < 600


def test_augment_is_reproducible_from_the_seed():
    x = torch.rand(8, 3, 10, 10)
    a = Augment(True, 3, torch.Generator().manual_seed(5))(x)
    b = Augment(True, 3, torch.Generator().manual_seed(5))(x)
    assert torch.equal(a, b) and not bool(Augment(False, 0, torch.Generator()))


@pytest.mark.parametrize("name", ["onecycle", "linear", "cosine"])
def test_schedules_warm_and_decay(name):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = make_scheduler(opt, name, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert lrs[-1] < 0.01
    if name == "onecycle":
        assert lrs[0] < 0.01 and lrs.index(max(lrs)) == pytest.approx(25, abs=1)
    assert make_scheduler(opt, "constant", 10) is None
    with pytest.raises(TochaError, match="onecycle"):
        make_scheduler(opt, "exponential", 10)


def test_automatic_choices_on_this_machine():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("fp32", None)
    assert resolve_precision("bf16", cpu) == ("bf16", torch.bfloat16)
    cnn = create_model("tinyvgg", (1, 28, 28), 10)
    assert resolve_channels_last(None, cpu, cnn) is True
    assert resolve_channels_last(False, cpu, cnn) is False
    assert resolve_channels_last(None, cpu, create_model("linear", (1, 28, 28), 10)) is False
    assert resolve_channels_last(None, torch.device("cuda"), cnn) is True
    assert resolve_channels_last(None, torch.device("cuda"), create_model("mlp", (1, 28, 28), 10)) is False


def test_channels_last_gives_the_same_outputs():
    model = create_model("resnet", (3, 32, 32), 10, widths=[8, 16, 16, 32]).eval()
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    plain = predict_logits(model, images, Normalize([0.5] * 3, [0.25] * 3))
    model_cl = model.to(memory_format=torch.channels_last)
    fast = predict_logits(model_cl, images, Normalize([0.5] * 3, [0.25] * 3, channels_last=True))
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_flip_tta_averages_image_and_mirror():
    model = create_model("tinyvgg", (1, 8, 8), 3, hidden_units=2).eval()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    norm = Normalize([0.5], [0.5])
    both = predict_logits(model, images, norm, flip_tta=True)
    expected = (predict_logits(model, images, norm) + predict_logits(model, images.flip(3), norm)) / 2
    torch.testing.assert_close(both, expected)


def test_the_speed_run_recipe_trains_on_cpu(tmp_path):
    """resnet + onecycle + flip/translate + label smoothing + EMA + flip TTA + bf16, end to end;
    `evaluate` reproduces the accuracy the run reported (same weights, same precision, same TTA)."""
    run = train_quick(
        tmp_path,
        data__name="mnist-sample",
        model__name="resnet",
        model__widths=[8, 16, 16, 32],
        data__augment_translate=2,
        train__schedule="onecycle",
        train__lr=0.01,
        train__optimizer="adamw",
        train__label_smoothing=0.1,
        train__ema_decay=0.9,
        train__tta_flip=True,
        train__precision="bf16",
        train__batch_size=128,
        train__epochs=2,
    )
    assert run.config.train.precision == "bf16"
    assert run.final.accuracy > 0.5  # learns (digits with flip TTA and a tiny net: far above 10%)
    ckpt = load_checkpoint(run.run_dir)
    trained = restore(run.run_dir, resolve_device("cpu"))
    assert trained.amp_dtype == torch.bfloat16
    assert set(ckpt["model"]) == set(trained.model.state_dict())  # EMA weights saved under model names
    again = evaluate_checkpoint(run.run_dir, out_dir=tmp_path / "eval")
    assert again.evaluation.accuracy == pytest.approx(run.final.accuracy)


def test_ema_weights_are_what_gets_saved(tmp_path, shared_run):
    plain = shared_run(data__name="mnist-sample", model__name="linear", train__epochs=1)
    ema = train_quick(
        tmp_path / "e", data__name="mnist-sample", model__name="linear", train__epochs=1, train__ema_decay=0.5
    )
    w_plain = load_checkpoint(plain.run_dir)["model"]["1.weight"]
    w_ema = load_checkpoint(ema.run_dir)["model"]["1.weight"]
    assert not torch.equal(w_plain, w_ema)  # same seed and batches: only the averaging differs
    # decay 0.5 averages mostly the last few steps: close to the trained weights, not equal
    assert (w_plain - w_ema).abs().max() < 0.5 * w_plain.abs().max()


def test_compile_path_trains(tmp_path):
    """torch.compile (inductor, CPU): the compiled model trains the very weights that are saved."""
    run = train_quick(
        tmp_path, data__name="mnist-sample", model__name="linear", train__epochs=1, train__compile=True
    )
    ckpt = load_checkpoint(run.run_dir)
    assert not any(k.startswith("_orig_mod") for k in ckpt["model"])
    assert run.final.accuracy > 0.75
