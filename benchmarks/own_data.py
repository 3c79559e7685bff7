"""Your own data (`tocha.train(data=...)`) against the registered dataset and the plain DataLoader loop.

    python benchmarks/own_data.py [--seeds 0 1 2] [--epochs 3] [--data-dir ../shared/data]

The notes' Fashion-MNIST `Dataset` (the raw IDX files read once; `__getitem__` returns one image and
its label) and the notes' TinyVGG (FashionMNISTModelV2, hidden_units 10), Adam lr 0.001, batch 64,
on the full 60,000 training / 10,000 test images, on the CPU with torch's default thread count.

- registered: `tocha.train(data="fashion-mnist")`, tocha's own reader.
- dataset-uint8: `tocha.train(data=(FashionMNIST(train=True), FashionMNIST(train=False)))`, items
  as uint8 pixels (trains to the registered run's very weights: tests/test_given_data.py).
- dataset-float: the same with items as ToTensor gives them (float / 255), passed as given.
- stream, stream-2-workers: the float Dataset with `stream=True`, its training split read again at
  the start of every epoch (each item under its own seed), here or by 2 reading processes.
- dataloader: the loop a learner writes over the float Dataset: DataLoader(batch_size=64,
  shuffle=True), forward, loss, zero_grad, backward, step, running loss by `loss.item()`.

Timed (time.perf_counter): reading, for tocha's paths, the data from its source into memory once
(`data.given.load_given` for a Dataset: every `__getitem__`; the registered reader from its cache
of decoded tensors, as a second run finds it); an epoch, tocha's own recorded `seconds` per epoch
(the shuffle to the epoch's one sync) and the DataLoader's whole `for x, y in loader:` loop. tocha
also carves a validation split (54,000 images train) where the loop trains on all 60,000: the table
gives samples per second beside seconds per epoch. An epoch's seconds are the mean over the epochs
after the first (a streamed run trains its first epoch on its first read, and reads again before
each later one; that reading is part of the epoch's recorded seconds). One JSON line per run, then
a summary per method.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import SHARED_DATA, emit, machine
from torch import nn
from torch.utils.data import DataLoader, Dataset

import tocha
from tocha.config import DataConfig
from tocha.data.given import load_given
from tocha.data.load import load_configured


class FashionMNIST(Dataset):
    def __init__(self, root: Path, train: bool = True, as_float: bool = False) -> None:
        prefix = "train" if train else "t10k"
        with gzip.open(root / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz") as f:
            self.images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(root / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz") as f:
            self.labels = np.frombuffer(f.read(), np.uint8, offset=8)
        self.as_float = as_float

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = torch.from_numpy(self.images[i].copy())
        return (image.float().div(255) if self.as_float else image), int(self.labels[i])


class FashionMNISTModelV2(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int) -> None:
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(input_shape, hidden_units, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden_units * 7 * 7, output_shape))

    def forward(self, x):
        return self.classifier(self.block_2(self.block_1(x)))


ARGS = {"input_shape": 1, "hidden_units": 10, "output_shape": 10}


def tocha_run(method: str, seed: int, epochs: int, root: Path, out: Path) -> dict[str, float]:
    if method == "registered":
        started = time.perf_counter()
        load_configured(DataConfig(name="fashion-mnist", data_dir=str(root)), log=lambda _line: None)
        reading = time.perf_counter() - started
        data = "fashion-mnist"
    else:
        as_float = method != "dataset-uint8"
        data = (FashionMNIST(root, True, as_float), FashionMNIST(root, False, as_float))
        started = time.perf_counter()
        load_given(data, DataConfig(), "python:FashionMNIST", log=None)
        reading = time.perf_counter() - started
    stream = {"stream": True, "workers": 2 if method.endswith("workers") else 0} if "stream" in method else {}
    result = tocha.train(data=data, data_dir=str(root), model=FashionMNISTModelV2, model_args=ARGS,
                         epochs=epochs, seed=seed, out_dir=str(out), progress=False,
                         log=lambda _line: None, **stream)  # fmt: skip
    seconds = [row["seconds"] for row in result.history][1:] or [result.history[0]["seconds"]]
    return {"reading_s": reading, "epoch_s": statistics.mean(seconds),
            "samples_per_s": len(result.data.train) / statistics.mean(seconds),
            "test_accuracy": result.final.accuracy}  # fmt: skip


def dataloader_run(seed: int, epochs: int, root: Path) -> dict[str, float]:
    train_set, test_set = FashionMNIST(root, True, True), FashionMNIST(root, False, True)
    torch.manual_seed(seed)
    model = FashionMNISTModelV2(**ARGS)
    loss_fn, optimizer = nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.001)
    loader = DataLoader(train_set, batch_size=64, shuffle=True)
    seconds = []
    for _ in range(epochs):
        model.train()
        started, running = time.perf_counter(), 0.0
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
        seconds.append(time.perf_counter() - started)
    seconds = seconds[1:] or seconds  # as tocha's: the epochs after the first
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test_set, batch_size=64):
            correct += int((model(x).argmax(1) == y).sum())
    return {"reading_s": 0.0, "epoch_s": statistics.mean(seconds),
            "samples_per_s": len(train_set) / statistics.mean(seconds),
            "test_accuracy": correct / len(test_set)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    methods = ["registered", "dataset-uint8", "dataset-float", "stream", "stream-2-workers", "dataloader"]
    emit({"benchmark": "own_data", **machine(), "epochs": args.epochs, "seeds": args.seeds})
    found: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as out:
        for round_number, seed in enumerate(args.seeds):
            order = methods[round_number % len(methods) :] + methods[: round_number % len(methods)]
            for method in order:  # rotated each round: drift of the machine spreads over all of them
                if method == "dataloader":
                    row = dataloader_run(seed, args.epochs, args.data_dir)
                else:
                    row = tocha_run(method, seed, args.epochs, args.data_dir, Path(out))
                found[method].append(row)
                emit({"method": method, "seed": seed, **row})
    for method, rows in found.items():
        summary = {key: statistics.mean(r[key] for r in rows) for key in rows[0]}
        spread = {
            f"{key}_min_max": (min(r[key] for r in rows), max(r[key] for r in rows)) for key in ("epoch_s",)
        }
        emit({"method": method, "mean_over_seeds": summary, **spread})


if __name__ == "__main__":
    main()
