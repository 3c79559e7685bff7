"""LoadedData refuses labels that name no class, whatever reader produced them."""

from __future__ import annotations

import pytest
import torch

from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError


def split(labels: list[int]) -> TensorSet:
    return TensorSet(torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), torch.tensor(labels))


@pytest.mark.parametrize(("train", "test", "bad"), [([0, 1, 10], [0], "train"), ([0, 1], [-1], "test")])
def test_labels_outside_the_classes_are_refused(train: list[int], test: list[int], bad: str) -> None:
    classes = [str(i) for i in range(10)]
    with pytest.raises(TochaError, match=f"digits: {bad} labels outside 0..9"):
        LoadedData("digits", classes, split(train), split(test), source="test")


def test_labels_inside_the_classes_are_kept() -> None:
    data = LoadedData("digits", ["a", "b"], split([0, 1, 1]), split([1]), source="test")
    assert data.train.labels.tolist() == [0, 1, 1]
