"""Seconds per epoch and test accuracy of one setup trained by the tutorial loop, Lightning and tocha.

    python benchmarks/vs_loops.py [--epochs 5] [--seeds 0 1 2] [--data-dir ../shared/data]
                                  [--methods tutorial lightning tocha tocha-compile]

Lightning is a benchmark-only dependency: `pip install -r benchmarks/requirements.txt` (after torch).

The setup is the EstudoCaso1 MNIST notebook on full MNIST (60,000 train / 10,000 test): MLP
784-128-64-10, ReLU, log-softmax + NLLLoss, SGD lr 0.003 momentum 0.9, batch 64, 5 epochs. All
build the same nn.Sequential (Flatten, Linear, ReLU, Linear, ReLU, Linear, LogSoftmax) right after
torch.manual_seed(seed), so they start from the same weights; all run on the CPU with torch's
default thread count (printed in the first line as torch_threads, and with every run).

- tutorial: what PyTorch tutorials and course notebooks do. A Dataset whose __getitem__ makes a
  Pillow image of one uint8 array, converts it like torchvision's ToTensor (float / 255, shape
  (1, 28, 28)) and normalises with mean 0.1307, std 0.3081; DataLoader(batch_size=64, shuffle=True,
  num_workers=0); then forward, loss, zero_grad, backward, step and running_loss += loss.item().
- lightning: the same model as a LightningModule (training_step logs and returns the NLL loss),
  fitted by lightning.Trainer(accelerator="cpu", devices=1, no logger, checkpoint or progress bar)
  on the same DataLoader.
- tocha: tocha.training.train() with the same hyperparameters on device cpu; it normalises with the
  training set's own mean and std (0.1307 and 0.3081 to four digits).
- tocha-compile: the same with train.compile (torch.compile of the model, inductor on the CPU).

What is timed (time.perf_counter), for each epoch:
- tutorial: the whole `for images, labels in loader:` loop, i.e. creating the DataLoader iterator,
  the per-sample Pillow work and collation, and every training step including its loss.item().
- lightning: from the Callback hook on_train_epoch_start to on_train_epoch_end, i.e. the DataLoader
  iteration and every training step with all of Lightning's per-step machinery (self.log included).
  In the first epoch the DataLoader iterator is created just before on_train_epoch_start (lazy: no
  batch is fetched there), so that moment is the only thing left out.
- tocha: the `seconds` tocha itself records per epoch: training.loop.train_one_epoch from the shuffle to
  the one sync at its end (the data are already decoded in memory).
- tocha-compile: the same, without its first epoch, which includes compiling the model (its
  seconds are in epoch_seconds[0]).
Not timed, for all: reading and decoding the IDX files, building model and optimizer, test
evaluation (tocha evaluates after every epoch, the others once at the end), tocha's checkpoints,
metrics.csv and plots. Test accuracy is measured after the last epoch: for tutorial and lightning
with model.eval() and torch.no_grad() over a DataLoader of the test Dataset (batch 64).

The order of the methods is rotated from seed to seed, so that drift of the machine (heat, other
load) is spread over all of them. Prints one JSON line per run, then one summary line per method,
then tocha's speed ratios (other method's seconds per epoch / tocha's, > 1 means tocha is faster).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import SHARED_DATA, emit, machine, train_quietly
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tocha.data.idx import read_idx_pair

METHODS = ["tutorial", "lightning", "tocha", "tocha-compile"]
MEAN, STD = 0.1307, 0.3081  # the notebook's (and torchvision examples') MNIST statistics
LR, MOMENTUM, BATCH_SIZE = 0.003, 0.9, 64
# All 60,000 training images (no validation carve), as the hand-written loops train on.
TOCHA_SETUP = {"data.name": "mnist", "data.val_fraction": 0,
               "model.name": "mlp", "model.hidden_sizes": [128, 64],
               "model.activation": "relu", "train.loss": "nll", "train.optimizer": "sgd",
               "train.lr": LR, "train.momentum": MOMENTUM, "train.batch_size": BATCH_SIZE,
               # Lightning runs with accelerator="cpu": tocha must not pick a GPU where there is one.
               "train.device": "cpu"}  # fmt: skip


class MnistTutorialDataset(Dataset):
    """torchvision.datasets.MNIST + ToTensor + Normalize, as tutorials use it, without torchvision."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images  # (N, 28, 28) uint8
        self.labels = labels  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[index], mode="L")  # what torchvision's MNIST does
        # ToTensor: HWC uint8 array -> CHW float in [0, 1]
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(img.size[1], img.size[0], 1)
        x = x.permute(2, 0, 1).contiguous().to(dtype=torch.float32).div(255)
        x = (x - MEAN) / STD  # Normalize((0.1307,), (0.3081,))
        return x, int(self.labels[index])  # a Python int, as torchvision returns; collated to int64


def load_split(mnist_dir: Path, prefix: str) -> MnistTutorialDataset:
    images, labels = read_idx_pair(
        mnist_dir / f"{prefix}-images-idx3-ubyte.gz", mnist_dir / f"{prefix}-labels-idx1-ubyte.gz"
    )
    return MnistTutorialDataset(images[:, 0], labels)  # read_idx_pair gives (N, 1, H, W)


def build_mlp() -> nn.Sequential:
    """The notebook's model. Flatten replaces its images.view(B, -1); it has no weights, and this layer
    order is tocha's `mlp`, so the same seed gives all three methods the same initial weights."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
        nn.LogSoftmax(dim=1),
    )


def test_accuracy(model: nn.Module, loader: DataLoader) -> float:
    """The tutorials' evaluation: eval mode, no_grad, argmax, correct / total."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images).argmax(dim=1)
            correct += (predicted == labels).sum().item()
            total += labels.size(0)
    return correct / total


def run_tutorial(seed: int, epochs: int, train_set: Dataset, test_set: Dataset) -> tuple[list[float], float]:
    torch.manual_seed(seed)
    model = build_mlp()
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    trainloader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    epoch_seconds = []
    for _epoch in range(epochs):
        model.train()
        running_loss = 0.0  # the notebook prints it per epoch; kept so that its .item() sync is timed
        start = time.perf_counter()
        for images, labels in trainloader:
            output = model(images)
            loss = criterion(output, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        epoch_seconds.append(time.perf_counter() - start)
    return epoch_seconds, test_accuracy(model, DataLoader(test_set, batch_size=BATCH_SIZE))


def run_lightning(seed: int, epochs: int, train_set: Dataset, test_set: Dataset) -> tuple[list[float], float]:
    import lightning as L  # imported here: only this method needs it

    # Lightning's INFO lines ("GPU available: ...", tips, "max_epochs reached") would repeat every run;
    # set after the import, which sets the level to INFO. Its warnings still show on stderr.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    class LitMLP(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_mlp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.nll_loss(self(x), y)
            self.log("train_loss", loss)  # as Lightning's MNIST examples do
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._start = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    torch.manual_seed(seed)
    module = LitMLP()
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True))
    return timer.seconds, test_accuracy(module.model, DataLoader(test_set, batch_size=BATCH_SIZE))


def run_tocha(
    seed: int, epochs: int, data_dir: Path, out_dir: str, compile: bool = False
) -> tuple[list[float], float]:
    settings = {**TOCHA_SETUP, "train.epochs": epochs, "train.seed": seed, "train.compile": compile}
    result = train_quietly(settings, data_dir, out_dir)  # seeds the model itself
    return [row["seconds"] for row in result.history], result.final.accuracy


def ratios(runs: list[dict[str, Any]], tocha_runs: list[dict[str, Any]]) -> list[float]:
    """Seconds per epoch over tocha's, round by round (same index: same seed, same round)."""
    return [r["seconds_per_epoch"] / t["seconds_per_epoch"] for r, t in zip(runs, tocha_runs, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    methods = [m for m in METHODS if m in args.methods]  # canonical order, duplicates dropped
    emit({"benchmark": "vs_loops", **machine(), "epochs": args.epochs, "seeds": args.seeds})

    # Read once, outside any timing; tocha reads its own copy (through its decoded-data cache).
    if {"tutorial", "lightning"} & set(methods):
        train_set = load_split(args.data_dir / "mnist", "train")
        test_set = load_split(args.data_dir / "mnist", "t10k")

    records: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as out_dir:
        for round_index, seed in enumerate(args.seeds):
            shift = round_index % len(methods)
            for position, method in enumerate(methods[shift:] + methods[:shift]):
                if method == "tutorial":
                    seconds, accuracy = run_tutorial(seed, args.epochs, train_set, test_set)
                elif method == "lightning":
                    seconds, accuracy = run_lightning(seed, args.epochs, train_set, test_set)
                else:
                    compiled = method == "tocha-compile"
                    seconds, accuracy = run_tocha(seed, args.epochs, args.data_dir, out_dir, compiled)
                # With --compile the first epoch includes compiling the model: it is reported on
                # its own and left out of seconds_per_epoch.
                steady = seconds[1:] if method == "tocha-compile" and len(seconds) > 1 else seconds
                record = {"method": method, "seed": seed, "epoch_seconds": seconds,
                          "seconds_per_epoch": statistics.mean(steady), "test_accuracy": accuracy,
                          "position": position, "torch_threads": torch.get_num_threads()}  # fmt: skip
                records[method].append(record)
                emit(record)

    means = {}
    for method, runs in records.items():
        accuracies = [r["test_accuracy"] for r in runs]
        per_epoch = [r["seconds_per_epoch"] for r in runs]
        means[method] = statistics.mean(per_epoch)
        emit({"method": method, "seeds": args.seeds, "epochs": args.epochs,
              "accuracy_mean": statistics.mean(accuracies),
              "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
              "seconds_per_epoch_mean": means[method],
              "seconds_per_epoch_min": min(per_epoch), "seconds_per_epoch_max": max(per_epoch)})  # fmt: skip

    for ours in ("tocha", "tocha-compile"):
        if ours not in methods:
            continue
        line: dict[str, object] = {
            "speed_ratio_vs": ours,
            "meaning": f"other seconds_per_epoch / {ours} seconds_per_epoch (> 1: {ours} faster)",
        }
        for method in methods:
            if not method.startswith("tocha"):
                line[f"{method}_over_{ours}"] = means[method] / means[ours]  # ratio of the means
                line[f"{method}_over_{ours}_per_seed"] = ratios(records[method], records[ours])
        emit(line)


if __name__ == "__main__":
    main()
