"""Augmentation of whole batches on the device: random horizontal flips and translations, random
resized crops, random erasing, MixUp and CutMix.

Each works on a (B, C, H, W) float batch (normalised: 0 is the mean) with its draws from the run's
seeded generator, so there is no per-sample Python and runs stay reproducible and resume exactly.
MixUp and CutMix mix each image with another of the batch and its label with the other's: the
labels become each class's share (B, classes), which the cross-entropy loss takes as they are; the
training accuracy then counts an output's top class against each image's larger share.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from tocha.errors import TochaError


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `pad` pixels in x and y (zero padding, then a random crop)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1, 1), generator=generator, device=generator.device)
    rows = dy.to(x.device) + torch.arange(h, device=x.device).view(1, h, 1)  # (B, H, 1)
    cols = dx.to(x.device) + torch.arange(w, device=x.device).view(1, 1, w)  # (B, 1, W)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # One gather picks every image's own window: (B, H+2p, W+2p, C)[...] -> (B, H, W, C).
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


CROP_SCALE, CROP_RATIO = (0.35, 1.0), (3 / 4, 4 / 3)  # of the image's area; width / height
ERASE_P, ERASE_AREA, ERASE_RATIO = 0.5, (0.02, 0.25), (0.3, 3.3)
MIXUP_ALPHA, CUTMIX_ALPHA = 0.2, 1.0  # Beta(alpha, alpha) mixing shares, as in the papers and timm
NAMES = ("crop", "erase", "mixup", "cutmix")  # `--augment` (joined with +); flip and shift have flags


def uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def random_resized_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image a random window (`CROP_SCALE` of its area, aspect within `CROP_RATIO`) stretched
    back to its size: one `affine_grid` + `grid_sample` for the batch."""
    b = x.shape[0]
    area = uniform(*CROP_SCALE, b, generator)
    ratio = torch.exp(uniform(*(torch.tensor(CROP_RATIO).log().tolist()), b, generator))
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)  # shares of the sides
    cx, cy = uniform(-1, 1, b, generator) * (1 - w), uniform(-1, 1, b, generator) * (1 - h)
    theta = torch.zeros(b, 2, 3, device=generator.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def box_masks(
    h: int,
    w: int,
    top: torch.Tensor,
    left: torch.Tensor,
    *,
    height: torch.Tensor,
    width: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """(B, 1, H, W) booleans: True inside each image's box."""
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    top, left, height, width = (v.to(device).view(-1, 1, 1) for v in (top, left, height, width))
    inside = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
    return inside.unsqueeze(1)


def random_erase(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """In `ERASE_P` of the images, a random box (`ERASE_AREA` of the image, aspect within
    `ERASE_RATIO`) set to 0, the data's mean once normalised."""
    b, _, h, w = x.shape
    area = uniform(*ERASE_AREA, b, generator) * h * w
    ratio = torch.exp(uniform(*(torch.tensor(ERASE_RATIO).log().tolist()), b, generator))
    height = (area / ratio).sqrt().round().clamp(1, h)
    width = (area * ratio).sqrt().round().clamp(1, w)
    top = (uniform(0, 1, b, generator) * (h - height + 1)).floor()
    left = (uniform(0, 1, b, generator) * (w - width + 1)).floor()
    chosen = (torch.rand(b, generator=generator, device=generator.device) < ERASE_P).view(-1, 1, 1, 1)
    mask = box_masks(h, w, top, left, height=height, width=width, device=x.device) & chosen.to(x.device)
    return x.masked_fill(mask, 0.0)


def beta(alpha: float, generator: torch.Generator) -> float:
    """One Beta(alpha, alpha) draw, seeded by the generator (torch's own Beta takes no generator)."""
    import numpy as np

    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def soft_labels(y: torch.Tensor, classes: int) -> torch.Tensor:
    """Class indices (B,) as shares (B, classes); shares already stay as they are."""
    return y if y.is_floating_point() else F.one_hot(y, classes).float()


def mixup(
    x: torch.Tensor, y: torch.Tensor, classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image blended with another of the batch (a seeded permutation) by one Beta(0.2, 0.2)
    share for the batch, and the labels blended alike."""
    share = beta(MIXUP_ALPHA, generator)
    other = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
    y = soft_labels(y, classes)
    return share * x + (1 - share) * x[other], share * y + (1 - share) * y[other]


def cutmix(
    x: torch.Tensor, y: torch.Tensor, classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A box of another image of the batch pasted into each (one box size for the batch, of 1 -
    share of the area with share from Beta(1, 1); each image's own place), and the labels mixed by
    the share of pixels that stayed."""
    b, _, h, w = x.shape
    share = beta(CUTMIX_ALPHA, generator)
    side = (1 - share) ** 0.5
    height, width = torch.full((b,), round(h * side)), torch.full((b,), round(w * side))
    top = (uniform(0, 1, b, generator).cpu() * (h - height + 1)).floor()
    left = (uniform(0, 1, b, generator).cpu() * (w - width + 1)).floor()
    other = torch.randperm(b, generator=generator, device=generator.device).to(x.device)
    mask = box_masks(h, w, top, left, height=height, width=width, device=x.device)
    kept = 1 - (height * width).float().to(x.device) / (h * w)  # the share of pixels that stayed
    y = soft_labels(y, classes)
    mixed = kept.view(-1, 1) * y + (1 - kept.view(-1, 1)) * y[other]
    return torch.where(mask, x[other], x), mixed


class Augment:
    """The configured augmentations, applied in a fixed order: crop, translate, flip, erase, then
    MixUp or CutMix (with both, each batch takes one of them, by a seeded coin)."""

    def __init__(
        self,
        flip: bool,
        translate: int,
        generator: torch.Generator,
        names: tuple[str, ...] = (),
        *,
        classes: int = 0,
    ) -> None:
        self.flip, self.translate, self.generator = flip, translate, generator
        self.names, self.classes = tuple(names), classes

    def __bool__(self) -> bool:
        return self.flip or self.translate > 0 or bool(self.names)

    @property
    def mixes(self) -> bool:
        """Whether the labels are mixed (shares, not indices)."""
        return "mixup" in self.names or "cutmix" in self.names

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        """The augmented batch; with labels, (images, labels), the labels as shares when mixed."""
        if "crop" in self.names:
            x = random_resized_crop(x, self.generator)
        if self.translate > 0:
            x = random_translate(x, self.translate, self.generator)
        if self.flip:
            x = random_flip(x, self.generator)
        if "erase" in self.names:
            x = random_erase(x, self.generator)
        if y is None:
            return x
        if self.mixes:
            both = "mixup" in self.names and "cutmix" in self.names
            use_cutmix = "cutmix" in self.names and (
                not both or bool(torch.rand((), generator=self.generator, device=self.generator.device) < 0.5)
            )
            x, y = (cutmix if use_cutmix else mixup)(x, y, self.classes, self.generator)
        return x, y


def augment_names(text: str) -> tuple[str, ...]:
    """`--augment crop+erase+mixup` (or none) as names, each known and once."""
    names = tuple(n.strip() for n in text.split("+") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in NAMES]
    if unknown or len(set(names)) != len(names):
        raise TochaError(
            f"--augment {text}: give none, or names joined with +, each once, from {', '.join(NAMES)}"
        )
    return names


def check_translate(pixels: int, image_shape: tuple[int, int, int]) -> None:
    """A shift must be smaller than the image: larger ones only pad, at a memory cost that grows with
    its square (a shift of 100,000 asks for terabytes)."""
    if pixels >= max(image_shape[1:]):
        raise TochaError(
            f"augment_translate {pixels} must be smaller than the images ({image_shape[1]}x{image_shape[2]})"
        )


def augment_seed(seed: int, rank: int) -> int:
    """The augmentation generator's seed: apart from the shuffle's, and different on each rank."""
    return seed * 65_536 + 32_768 + rank
