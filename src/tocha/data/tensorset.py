"""The in-memory form of every dataset: uint8 images (N, C, H, W) and int64 labels; or, for a
table, float32 rows shaped (N, F, 1, 1) (a feature per channel, so per-channel normalisation is
per-feature standardisation and the batching is the images') and int64 classes or float32 targets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from tocha.errors import TochaError
from tocha.tasks import task_class


@dataclass
class TensorSet:
    """One split: images stay uint8 until a batch is taken, which keeps them 4x smaller."""

    images: torch.Tensor  # (N, C, H, W) uint8, a table's (N, F, 1, 1) float32, token ids' int64
    labels: torch.Tensor  # (N,) int64 classes, float32 regression targets, or what a task's labels are
    origin: torch.Tensor | None = None  # each sample's index in the Dataset it was read from (`--stream`)

    def __post_init__(self) -> None:
        if self.images.dtype not in (torch.uint8, torch.float32, torch.int64) or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), float32 or int64 (N, F, 1, 1), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.ndim < 1 or len(self.labels) != len(
            self.images
        ):  # (N,), or (N, ...) as a task has them
            raise ValueError(f"{len(self.images)} images but labels of shape {tuple(self.labels.shape)}")
        self.labels = self.labels.float() if self.labels.is_floating_point() else self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def take(self, rows: torch.Tensor | np.ndarray) -> TensorSet:
        """The samples at `rows` (indices), in that order."""
        index = torch.as_tensor(rows, device=self.labels.device)
        origin = self.origin[index.cpu()] if self.origin is not None else None
        return TensorSet(self.images[index], self.labels[index], origin)

    def to(self, device: torch.device | str) -> TensorSet:
        """Both tensors on `device` (one copy, done once per run)."""
        return TensorSet(self.images.to(device), self.labels.to(device), self.origin)


@dataclass
class LoadedData:
    """A dataset ready for training: named classes, a train, a validation (where there is one) and
    a test split, and its origin."""

    name: str
    classes: list[str]
    train: TensorSet
    test: TensorSet
    source: str  # human words: which files or folder it came from
    details: dict[str, object] = field(default_factory=dict)
    task: str = "classification"  # the task's name (`tocha.tasks`): a table's target may make it another
    table: dict[str, object] | None = None  # a table's encoding (`TableEncoder.to_dict`), for predict
    val: TensorSet | None = None  # what every choice is made on (`data.splits`); None: none
    val_source: str = ""  # where the validation rows come from, in words ("" when there are none)

    def __post_init__(self) -> None:
        for split_name, split in (("test", self.test), ("validation", self.val)):
            if split is not None and split.image_shape != self.train.image_shape:
                raise TochaError(
                    f"{self.name}: train images are {self.train.image_shape} but {split_name} "
                    f"images are {split.image_shape}"
                )
        task = task_class(self.task)
        for split_name, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            if split is not None:
                task.check_labels(split.labels, self.classes, f"{self.name}: {split_name}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    def fingerprint(self) -> str:
        """A digest of what a run trains and is scored on: both splits' inputs and labels, the
        class names, and a text run's tokens and vocabulary (a resumed run must find the very same
        data, not only the same counts)."""
        from tocha.data.cache import digest

        tensors = {
            "train_images": self.train.images,
            "train_labels": self.train.labels,
            "test_images": self.test.images,
            "test_labels": self.test.labels,
        }
        if self.val is not None:  # the validation rows are part of what a run is: the same ones again
            tensors.update(val_images=self.val.images, val_labels=self.val.labels)
        # Images kept on disk are named by their file's recorded digest and their rows, not read.
        on_disk = "".join(t.digest() for t in tensors.values() if not isinstance(t, torch.Tensor))
        tensors = {k: t for k, t in tensors.items() if isinstance(t, torch.Tensor)}
        text = self.text or {}
        vocab = (
            f"\x1e{text['tokens']}\x1f{text['max_length']}\x1f" + "\x1f".join(text["vocab"]) if text else ""
        )
        return digest(tensors, "\x1f".join(self.classes) + on_disk + vocab)

    @property
    def rows(self) -> bool:
        """Whether each input is a row of features (a table's, or rows given in Python): the model
        takes (N, F), held as (N, F, 1, 1)."""
        return self.table is not None or bool(self.details.get("rows"))

    @property
    def item_shape(self) -> tuple[int, ...]:
        """One input as the model takes it: (C, H, W) of an image, (F,) of a row, or the shape data
        given in Python had: (C, L) of a signal (held as (C, L, 1))."""
        shape = self.details.get("shape")
        if shape:
            return tuple(shape)  # type: ignore[arg-type]
        return (self.image_shape[0],) if self.rows else self.image_shape

    @property
    def integer(self) -> bool:
        """Whether the inputs are integers (token ids), which reach the model as int64."""
        return self.train.images.dtype == torch.int64

    @property
    def text(self) -> dict | None:
        """A text run's tokens and vocabulary (`data.text.TextRecord`), else None."""
        return self.details.get("text")  # type: ignore[return-value]

    @property
    def vocab_size(self) -> int:
        """The ids a text run's inputs take (0 for any other data)."""
        return len(self.text["vocab"]) if self.text else 0

    @property
    def input_scale(self) -> float:
        """What the inputs are divided by before normalising: 255 for uint8 pixels, 1 for table rows."""
        return 255.0 if self.train.images.dtype == torch.uint8 else 1.0
