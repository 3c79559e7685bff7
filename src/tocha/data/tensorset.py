"""The in-memory form of every dataset: uint8 images (N, C, H, W) and int64 labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from tocha.errors import TochaError


@dataclass
class TensorSet:
    """One split: images stay uint8 until a batch is taken, which keeps them 4x smaller."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.images)} images but labels of shape {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TensorSet:
        """Both tensors on `device` (one copy, done once per run)."""
        return TensorSet(self.images.to(device), self.labels.to(device))


@dataclass
class LoadedData:
    """A dataset ready for training: named classes, a train and a test split, and its origin."""

    name: str
    classes: list[str]
    train: TensorSet
    test: TensorSet
    source: str  # human words: which files or folder it came from
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train.image_shape != self.test.image_shape:
            raise TochaError(
                f"{self.name}: train images are {self.train.image_shape} "
                f"but test images are {self.test.image_shape}"
            )
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(self.classes)):
                raise TochaError(f"{self.name}: {split_name} labels outside 0..{len(self.classes) - 1}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape
