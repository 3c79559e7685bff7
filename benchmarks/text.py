"""Text and sequences: tocha against the loop a learner writes, and the floor of the step itself.

    python benchmarks/text.py [--rounds 2] [--epochs 2] [--data-dir DIR]

Two setups, each on the same data, the same vocabulary and the very same model (tocha's `gru`:
embedding 64, one GRU layer of 128, a Linear head; Adam lr 0.001, batch 64, characters):

- classify: `sms-spam` (4,837 SMS, read from DIR/sms-spam/ or tocha's cache: `tocha train --data
  sms-spam` downloads it once; skipped with the reason where it is not on disk), texts up to 256
  characters. The loop: a `Dataset` of each text's ids, `DataLoader(batch_size=64, shuffle=True,
  collate_fn=pad_sequence)`, forward, cross-entropy, zero_grad, backward, step. tocha: `tocha.train`
  with `--shuffle full` and with `--shuffle lengths`.
- next-token: the char-RNN on `pydoc_data.topics` (every Python has it; 465,126 characters), windows
  of 128 characters. The loop: a `Dataset` of windows sliced from the corpus tensor, `DataLoader(
  batch_size=64, shuffle=True)`, the loss over every position. tocha: `--task next-token`.

The floor: the same model stepped over the same batches made beforehand (the ids already batched
and padded, in memory): forward, loss, zero_grad, backward, step, and nothing else. Each figure is
the mean of the epochs after the first (the first warms up), over `--rounds` rounds with the
methods' order rotated. One JSON line per measurement, then a summary line per setup.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import SHARED_DATA, emit, machine
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

import tocha
from tocha.config import DataConfig
from tocha.data.corpus import load_corpus
from tocha.data.text_datasets import text_dataset_csv
from tocha.data.text_set import load_text
from tocha.models import create_model
from tocha.tasks.next_token import token_loss

BATCH, LR = 64, 1e-3


def quiet(_line: str) -> None:
    pass


class Texts(Dataset):
    """Each text's ids without padding (the learner's Dataset), and its label."""

    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        lengths = (ids != 0).sum(1).clamp(min=1)
        self.items = [row[:n] for row, n in zip(ids, lengths.tolist(), strict=True)]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i], self.labels[i]


def padded(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    texts, labels = zip(*batch, strict=True)
    return pad_sequence(list(texts), batch_first=True), torch.stack(labels)


class Windows(Dataset):
    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i], self.labels[i]


def loop_epochs(model: nn.Module, loader: DataLoader, loss_fn, epochs: int) -> list[float]:  # noqa: ANN001
    """The learner's loop: seconds per epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def floor_epochs(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    loss_fn,  # noqa: ANN001
    epochs: int,
) -> list[float]:
    """The step alone, over batches made beforehand."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for x, y in batches:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def tocha_epochs(settings: dict, epochs: int, out: str) -> tuple[list[float], float]:
    run = tocha.train(
        **settings,
        epochs=epochs,
        batch_size=BATCH,
        lr=LR,
        optimizer="adam",
        out_dir=out,
        log=quiet,
        progress=False,
        model="gru",
    )
    return [row["seconds"] for row in run.history], run.final.values["accuracy"]


def batches_of(
    ids: torch.Tensor, labels: torch.Tensor, order: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of `order`, each cut to its longest text (as tocha cuts them)."""
    made = []
    for idx in order.split(BATCH):
        x = ids[idx]
        made.append((x[:, : int((x != 0).sum(1).max())].contiguous(), labels[idx]))
    return made


def classify(args: argparse.Namespace, out: str) -> None:
    try:
        path = text_dataset_csv("sms-spam", args.data_dir, download=False, log=quiet)
    except Exception as e:  # noqa: BLE001 - the reason is the record
        emit({"setup": "classify", "skipped": str(e).splitlines()[0]})
        return
    data = load_text(DataConfig(name=str(path), text="text", target="label"), str(path), quiet)
    ids, labels = data.train.images[:, :, 0, 0], data.train.labels
    vocab = data.vocab_size

    def model() -> nn.Module:
        torch.manual_seed(0)
        return create_model("gru", (ids.shape[1], 1, 1), 2, vocab_size=vocab)

    from tocha.data.batches import length_order

    generator = torch.Generator().manual_seed(0)
    full = torch.randperm(len(ids), generator=generator)
    grouped = length_order(full, (ids != 0).sum(1), BATCH, generator)
    settings = {
        "data": "sms-spam",
        "data_dir": str(Path(path).parent.parent),
        "threads": torch.get_num_threads(),
    }
    methods = {
        "loop": lambda: loop_epochs(
            model(),
            DataLoader(Texts(ids, labels), batch_size=BATCH, shuffle=True, collate_fn=padded),
            nn.functional.cross_entropy,
            args.epochs,
        ),
        "tocha --shuffle full": lambda: tocha_epochs({**settings, "shuffle": "full"}, args.epochs, out)[0],
        "tocha --shuffle lengths": lambda: tocha_epochs({**settings, "shuffle": "lengths"}, args.epochs, out)[
            0
        ],
        "floor (full order's batches)": lambda: floor_epochs(
            model(), batches_of(ids, labels, full), nn.functional.cross_entropy, args.epochs
        ),
        "floor (lengths order's batches)": lambda: floor_epochs(
            model(), batches_of(ids, labels, grouped), nn.functional.cross_entropy, args.epochs
        ),
    }
    measure("classify", methods, args, {"train_texts": len(ids), "vocabulary": vocab})


def next_token(args: argparse.Namespace, out: str) -> None:
    from pydoc_data.topics import topics

    corpus = Path(out) / "pydoc.txt"
    corpus.write_text("\n\n".join(topics[k] for k in sorted(topics)), encoding="utf-8")
    data = load_corpus(DataConfig(name=str(corpus), task="next-token", context=128), str(corpus), quiet)
    inputs, labels = data.train.images[:, :, 0, 0], data.train.labels
    vocab = data.vocab_size

    def model() -> nn.Module:
        torch.manual_seed(0)
        return create_model("gru", (128, 1, 1), vocab, vocab_size=vocab, per_token=True)

    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
    made = [(inputs[idx], labels[idx]) for idx in order.split(BATCH)]
    settings = {"data": str(corpus), "task": "next-token", "context": 128, "threads": torch.get_num_threads()}
    methods = {
        "loop": lambda: loop_epochs(
            model(),
            DataLoader(Windows(inputs, labels), batch_size=BATCH, shuffle=True),
            token_loss,
            args.epochs,
        ),
        "tocha": lambda: tocha_epochs(settings, args.epochs, out)[0],
        "floor": lambda: floor_epochs(model(), made, token_loss, args.epochs),
    }
    measure("next-token", methods, args, {"train_windows": len(inputs), "vocabulary": vocab})


def measure(setup: str, methods: dict, args: argparse.Namespace, about: dict) -> None:
    found: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # rotated
            seconds = methods[name]()
            later = seconds[1:] or seconds
            found[name] += later
            emit({"setup": setup, "method": name, "round": round_, "epoch_seconds": seconds})
    means = {name: statistics.mean(v) for name, v in found.items()}
    emit(
        {
            "setup": setup,
            **about,
            "summary_s_per_epoch": {n: round(m, 3) for n, m in means.items()},
            "ratio_to_loop": {n: round(means["loop"] / m, 2) for n, m in means.items()},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--setups", nargs="+", default=["classify", "next-token"])
    args = parser.parse_args()
    emit(machine())
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as out:
        for setup in args.setups:
            {"classify": classify, "next-token": next_token}[setup](args, out)


if __name__ == "__main__":
    main()
