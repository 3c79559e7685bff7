"""Augmentation of whole batches on the device: random horizontal flips and random translations.

Each works on a (B, C, H, W) float batch with one random draw per image, from the run's seeded
generator, so there is no per-sample Python and runs stay reproducible.
"""

from __future__ import annotations

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


class Augment:
    """The configured augmentations, applied in a fixed order: translate, then flip."""

    def __init__(self, flip: bool, translate: int, generator: torch.Generator) -> None:
        self.flip, self.translate, self.generator = flip, translate, generator

    def __bool__(self) -> bool:
        return self.flip or self.translate > 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.translate > 0:
            x = random_translate(x, self.translate, self.generator)
        if self.flip:
            x = random_flip(x, self.generator)
        return x


def check_translate(pixels: int, image_shape: tuple[int, int, int]) -> None:
    """A shift must be smaller than the image: larger ones only pad, at a memory cost that grows with
    its square (a shift of 100,000 asks for terabytes)."""
    if pixels >= max(image_shape[1:]):
        raise TochaError(f"augment_translate {pixels} must be smaller than the images "
                         f"({image_shape[1]}x{image_shape[2]})")  # fmt: skip


def augment_seed(seed: int, rank: int) -> int:
    """The augmentation generator's seed: apart from the shuffle's, and different on each rank."""
    return seed * 65_536 + 32_768 + rank
