"""Your own `Dataset` with a random transform (`tocha.data.stream`): read once, it is stopped in one
line (its randomness would be frozen); with `--stream` its training split is read again every epoch,
each item under a seed of its own, so a run repeats to the bit, whatever `--workers` reads it, and a
run stopped part-way resumes to the very weights of one that was not."""

from __future__ import annotations

import signal

import pytest
import torch
from torch.utils.data import Dataset

import tocha
from tocha.errors import Interrupted, TochaError
from tocha.runs.checkpoint import read_checkpoint

QUIET = {"progress": False, "log": lambda _line: None}


class NoisyQuadrants(Dataset):
    """A bright quadrant per class, and fresh noise each time an item is read (as a random transform)."""

    def __init__(self, n: int = 300) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 4
        self.x = torch.rand(n, 1, 8, 8, generator=g) * 0.3
        for k in range(4):
            r, c = divmod(k, 2)
            self.x[self.y == k, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 0.7
        self.reads = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.x[i] + 0.2 * torch.rand(1, 8, 8), int(self.y[i])


SETTINGS = {
    "model": "mlp",
    "hidden_sizes": [16],
    "epochs": 3,
    "batch_size": 20,
    "optimizer": "adam",
    "lr": 0.01,
    "data": "python:NoisyQuadrants",
}


def weights(run):
    return read_checkpoint(run).weights


def same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_a_random_transform_is_stopped_unless_streamed_and_a_streamed_run_repeats(tmp_path):
    from tocha.api import make_config
    from tocha.training import train
    from tocha.training.interrupt import StopRequest

    with pytest.raises(TochaError, match="train item 0 differs from one read to the next.*--stream"):
        tocha.train(data=NoisyQuadrants(), model="mlp", out_dir=str(tmp_path / "no"), **QUIET)
    assert not (tmp_path / "no").exists()

    data = NoisyQuadrants()
    one = train(
        make_config(out_dir=str(tmp_path), run_name="one", stream=True, **SETTINGS), data=data, **QUIET
    )
    train_items = len(one.data.train)
    assert data.reads == 300 + 2 * train_items  # read once, then the training split for epochs 2 and 3
    assert one.final.accuracy > 0.9
    two_config = make_config(out_dir=str(tmp_path), run_name="two", stream=True, **SETTINGS)
    two = train(two_config, data=NoisyQuadrants(), **QUIET)
    by_two = make_config(out_dir=str(tmp_path), run_name="workers", stream=True, workers=2, **SETTINGS)
    read_by_two = train(by_two, data=NoisyQuadrants(), **QUIET)
    assert same(weights(one.run_dir), weights(two.run_dir))
    assert same(weights(one.run_dir), weights(read_by_two.run_dir))  # each item's seed is its own

    stop = StopRequest()

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            stop.request(signal.SIGTERM)  # as SIGTERM does: the run stops at its next step, in epoch 2

    stopped = make_config(out_dir=str(tmp_path), run_name="stopped", stream=True, **SETTINGS)
    with pytest.raises(Interrupted):
        train(stopped, data=NoisyQuadrants(), log=log, progress=False, stop=stop)
    resumed = tocha.resume(tmp_path / "stopped", data=NoisyQuadrants(), **QUIET)
    assert same(weights(one.run_dir), weights(resumed.run_dir))
