"""Random resized crop, random erasing, MixUp and CutMix on whole batches: their statistics measured
on real draws (the sizes, the shares, Beta's law), labels mixed exactly as the pixels are, seeded,
and a run with all of them stopped and resumed bit for bit."""

from __future__ import annotations

import pytest
import torch
from helpers import stopped_after_epoch_one_then_resumed

from tocha.config import RunConfig, set_value
from tocha.runs.checkpoint import load_checkpoint
from tocha.tasks import ClassificationTask
from tocha.training import train
from tocha.training.augment import (
    CROP_SCALE,
    ERASE_AREA,
    ERASE_P,
    Augment,
    cutmix,
    mixup,
    random_erase,
    random_resized_crop,
)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_a_random_resized_crop_takes_a_window_of_the_stated_scale():
    ramp = torch.linspace(-1, 1, 32).expand(2000, 1, 32, 32).contiguous()  # the value is the column
    cropped = random_resized_crop(ramp, generator())
    width = (cropped[:, 0, 16, -1] - cropped[:, 0, 16, 0]) / (ramp[0, 0, 0, -1] - ramp[0, 0, 0, 0]) * 32 / 31
    assert cropped.shape == ramp.shape
    assert width.min() > CROP_SCALE[0] ** 0.5 * (3 / 4) ** 0.5 * 0.95 and width.max() <= 1.05
    assert 0.6 < width.mean() < 0.95 and width.std() > 0.1  # windows of many sizes
    flat = torch.full((4, 3, 8, 8), 0.5)
    assert torch.allclose(random_resized_crop(flat, generator()), flat)  # a flat image stays flat
    assert torch.equal(
        random_resized_crop(ramp[:8], generator(3)), random_resized_crop(ramp[:8], generator(3))
    )


def test_random_erasing_erases_the_stated_share_of_images_and_of_their_area():
    ones = torch.ones(4000, 1, 32, 32)
    erased = random_erase(ones, generator())
    area = (erased == 0).float().mean(dim=(1, 2, 3))
    hit = area > 0
    assert abs(hit.float().mean().item() - ERASE_P) < 0.03  # about half the images
    assert area[hit].min() >= ERASE_AREA[0] * 0.5 and area[hit].max() <= ERASE_AREA[1] * 1.3
    assert ERASE_AREA[0] < area[hit].mean() < ERASE_AREA[1]


def images_of(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Each image flat at its class's value (1, 10, 100...): a pixel says whose it is."""
    return (10.0 ** labels.float()).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).contiguous()


def test_mixup_mixes_labels_as_it_mixes_pixels_by_betas_law():
    from scipy import stats

    shares = []
    for seed in range(300):
        labels = torch.randint(0, 3, (16,), generator=generator(seed))
        x, y = mixup(images_of(labels, 3), labels, 3, generator(seed))
        assert torch.allclose(y.sum(dim=1), torch.ones(16))
        assert torch.allclose(x[:, 0, 0, 0], y @ torch.tensor([1.0, 10.0, 100.0]), rtol=1e-5)
        first = torch.nonzero(labels != labels[0])
        shares.append(y[0, labels[0]].item() if len(first) else None)
    drawn = [s for s in shares if s is not None and s < 1]  # the image's own share (not with itself)
    assert (
        stats.kstest([max(s, 1 - s) for s in drawn], lambda v: 2 * stats.beta.cdf(v, 0.2, 0.2) - 1).pvalue
        > 0.01
    )


def test_cutmix_gives_each_label_the_share_of_pixels_it_keeps():
    labels = torch.arange(32) % 4
    values = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    mixed = []
    for seed in range(10):
        x, y = cutmix(images_of(labels, 4), labels, 4, generator(seed))
        for i in range(32):
            pixels = x[i, 0].flatten()
            shares = torch.stack([(pixels == v).float().mean() for v in values])
            assert torch.allclose(shares, y[i], atol=1e-6)  # exactly the pixels' shares
        mixed.append((y.max(dim=1).values < 1).float().mean().item())
    assert max(mixed) > 0.5  # boxes of many sizes: most images mixed in some batches


def test_training_accuracy_under_mixing_counts_the_larger_share():
    task = ClassificationTask()
    sums = task.new_sums(torch.device("cpu"))
    shares = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    outputs = torch.tensor([[2.0, 1.0], [2.0, 1.0], [0.0, 1.0]])
    task.add(sums, torch.tensor(0.5), outputs, shares)
    assert task.summarize(sums, 3)["accuracy"] == pytest.approx(1 / 3)
    assert (
        Augment(False, 0, generator(), ("mixup",), classes=2).mixes
        and not Augment(False, 0, generator(), ("crop",)).mixes
    )


def test_a_run_with_every_augmentation_resumes_bit_exactly(tmp_path):
    from test_resume import assert_same

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
        values = {
            "data.name": "mnist-sample",
            "model.name": "tinyvgg",
            "train.epochs": 2,
            "train.threads": 1,
            "data.augment": "crop+erase+mixup+cutmix",
            "data.augment_flip": True,
            "data.train_limit": 512,
        }
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    straight = train(config("straight"), log=lambda _line: None, progress=False)
    stopped_after_epoch_one_then_resumed(config("stopped"))
    assert_same(load_checkpoint(tmp_path / "runs" / "stopped"), load_checkpoint(straight.run_dir))


def test_augmentation_that_cannot_apply_is_one_line(tmp_path):
    from helpers import run_main

    cases = [
        (
            ("--data", "mnist-sample", "--augment", "mixup", "--loss", "nll"),
            "mix the labels, which the cross_entropy",
        ),
        (("--data", "mnist-sample", "--augment", "crop+zoom"), "give none, or names joined with +"),
        (("--data", "diabetes", "--augment", "crop"), "augmentation is for images, not tables"),
    ]
    for flags, message in cases:
        result = run_main("train", *flags, "--out", tmp_path / "runs")
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()
