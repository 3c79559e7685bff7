"""The check every network gets before it trains or answers (`models.trial_run`): a small one
runs as a zeroed copy on the CPU, a large one on meta, and both say the same."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import run_main
from torch import nn

from tocha.config import ModelConfig
from tocha.models import trial_run as trial
from tocha.models.architecture import Architecture, DoesNotRun


def tinyvgg(outputs: int = 10) -> Architecture:
    return Architecture(ModelConfig(name="tinyvgg"), (1, 28, 28), outputs)


def test_the_cpu_check_says_what_the_meta_check_says(monkeypatch):
    on_cpu = trial.trial_run(tinyvgg(), tinyvgg().on_meta(), 64)
    monkeypatch.setattr(trial, "CPU_CHECK_PARAMETERS", 0)  # every network on meta
    on_meta = trial.trial_run(tinyvgg(), tinyvgg().on_meta(), 64)
    assert on_cpu[0].device.type == on_meta[0].device.type == "meta"
    assert on_cpu[0].shape == (2, 10) and on_meta[0].shape == (64, 10)  # the CPU's: of two inputs
    assert on_cpu[1] == on_meta[1] and sum(on_cpu[1]) > 0  # every layer's output bytes for 64 images


def test_a_large_input_is_tried_on_meta_where_it_takes_no_memory():
    """Two 1500x1500 images through a small network hold hundreds of MB: tried on meta, the output is
    the whole batch's (the CPU's would be two inputs')."""
    big = Architecture(ModelConfig(name="tinyvgg"), (3, 1500, 1500), 10)
    out, sizes = trial.trial_run(big, big.on_meta(), 32)
    assert out.shape == (32, 10) and max(sizes) == 32 * 10 * 1500 * 1500 * 4  # the first conv's output


def test_checking_a_network_neither_moves_the_seed_nor_changes_it():
    arch = tinyvgg()
    meta = arch.on_meta()
    state = torch.get_rng_state()
    arch.check()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(p.device.type == "meta" for p in meta.parameters()) and meta.training


def test_a_wrong_last_layer_is_refused_on_the_cpu_as_on_meta():
    arch = Architecture(ModelConfig(name="tinyvgg"), (1, 28, 28), 10)
    arch.on_meta().classifier[-1] = nn.Linear(490, 7, device="meta")
    with pytest.raises(DoesNotRun, match=r"returned Bx7 .*the task needs Bx10 floats"):
        arch.check()


class HeldOutside(nn.Module):
    """A tensor kept as a plain attribute, neither parameter nor buffer: made on meta, it stays there."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.ones(784)
        self.layer = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(1) * self.scale)


def test_a_network_the_cpu_copy_cannot_run_is_checked_on_meta():
    arch = Architecture(ModelConfig(name="HeldOutside"), (1, 28, 28), 10, given=HeldOutside)
    assert arch.on_meta().scale.device.type == "meta"  # the CPU copy fails on it...
    out, sizes = trial.trial_run(arch, arch.on_meta(), 8)  # ...and the meta run answers
    assert out.shape == (8, 10) and sizes == [8 * 10 * 4]


def test_answering_from_a_run_does_not_load_torchs_compiler(tmp_path):
    """The first forward on meta loads torch._dynamo (0.8 s of every command's start): a command
    that trains nothing must not need it."""
    rows = "".join(f"{i % 10},{(i * 7) % 10},{'ab'[i % 2]}\n" for i in range(80))
    (tmp_path / "t.csv").write_text("a,b,kind\n" + rows)
    trained = run_main("train", "--data", tmp_path / "t.csv", "--target", "kind", "--model", "mlp",
                       "--epochs", "1", "--out", tmp_path / "runs", "--name", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "new.csv").write_text("a,b\n1,2\n3,4\n")
    argv = ["predict", str(tmp_path / "runs" / "r"), str(tmp_path / "new.csv")]
    script = (
        f"import sys; from tocha.cli import main; c = main({argv!r}); print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False", done.stdout[-500:]
