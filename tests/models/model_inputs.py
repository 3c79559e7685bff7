"""Each registered model built with inputs it takes: images (C, H, W) for most, token ids for the
text models (`models.text_models`: a vocabulary of 20, texts of 12 tokens, the first one padded)."""

from __future__ import annotations

from typing import Any

import torch

from tocha.models import create_model
from tocha.models.registry import reads_text

TEXT_SHAPE, VOCAB = (12, 1, 1), 20


def build(name: str, in_shape: tuple[int, int, int], classes: int, **options: Any) -> Any:
    if reads_text(name):
        return create_model(name, TEXT_SHAPE, classes, vocab_size=VOCAB, **options)
    return create_model(name, in_shape, classes, **options)


def inputs(name: str, n: int, in_shape: tuple[int, int, int], scale: float = 1.0) -> torch.Tensor:
    if reads_text(name):
        ids = torch.randint(1, VOCAB, (n, TEXT_SHAPE[0]), generator=torch.Generator().manual_seed(n))
        ids[0, 8:] = 0  # a shorter text, padded
        return ids
    return torch.randn(n, *in_shape) * scale
