"""The course notes' own model classes, as the notes write them, for the tests to put into files.

`SimpleLinearModel` (the 10 -> 1 regression), `FashionMNISTModelV2` (TinyVGG as a class),
`MLPClasscifier` (the CIFAR-10 MLP, its name spelt as in the notes) and the EstudoCaso1 MNIST
model (an `nn.Sequential` ending in LogSoftmax, fed `images.view(N, -1)` by its loop).
"""

from __future__ import annotations

from pathlib import Path

NOTES_MODELS = '''\
import torch
from torch import nn


class SimpleLinearModel(nn.Module):
    def __init__(self, input_size, output_size):
        super(SimpleLinearModel, self).__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x):
        return self.linear(x)


class FashionMNISTModelV2(nn.Module):
    """
    Model architecture copying TinyVGG from:
    https://poloclub.github.io/cnn-explainer/
    """

    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(in_channels=input_shape, out_channels=hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(in_channels=hidden_units, out_channels=hidden_units, kernel_size=3, stride=1,
                      padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features=hidden_units * 7 * 7, out_features=output_shape),
        )

    def forward(self, x: torch.Tensor):
        x = self.block_1(x)
        x = self.block_2(x)
        x = self.classifier(x)
        return x


class MLPClasscifier(nn.Module):
    def __init__(self, input_size=32 * 32 * 3, hidden_size=256, num_classes=10):
        super(MLPClasscifier, self).__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        x = self.flatten(x)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


model = nn.Sequential(
    nn.Linear(784, 128),
    nn.ReLU(),
    nn.Linear(128, 64),
    nn.ReLU(),
    nn.Linear(64, 10),
    nn.LogSoftmax(dim=1),
)
'''


def write_notes_models(folder: Path, name: str = "notes.py") -> Path:
    """The notes' models in `folder/name`; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(NOTES_MODELS)
    return path


FASHION_V2_ARGS = ["--model-arg", "input_shape=1", "--model-arg", "hidden_units=10", "--model-arg",
                   "output_shape=10"]  # fmt: skip
