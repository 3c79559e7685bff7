"""Your own data named by a file (`tocha.data.code`): `tocha train --data FILE.py:NAME`, recorded,
hash-checked and signed as `--model FILE.py:NAME` is, under the same rule (a file never chooses the
code that runs), and read again through that file by evaluate, summary, compare and `--resume`."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
import torch
import yaml
from helpers import run_main

import tocha
from tocha.runs.checkpoint import read_checkpoint

QUIET = {"progress": False, "log": lambda _line: None}

BLOBS = '''import torch
from torch.utils.data import Dataset


class Blobs(Dataset):
    """Two classes of points around (-1, -1) and (1, 1)."""

    classes = ["low", "high"]

    def __init__(self, n=400, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 2, (n,), generator=g)
        self.x = torch.randn(n, 2, generator=g) * 0.7 + (self.y[:, None] * 2 - 1)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def splits(n=400):
    return {"train": Blobs(n, 0), "test": Blobs(n // 4, 1)}


TENSORS = (torch.linspace(-1, 1, 64)[:, None], torch.linspace(-1, 1, 64) * 3)
'''


@pytest.fixture
def blobs(tmp_path):
    path = tmp_path / "blobs.py"
    path.write_text(BLOBS)
    return path


def trained(folder):
    return read_checkpoint(folder).weights


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_route_trains_as_python_does_and_records_the_file(blobs, tmp_path):
    out = tmp_path / "runs"
    common = ["--model", "mlp", "--hidden-sizes", "16", "--epochs", "2", "--out", out, "--no-progress"]
    done = run_main("train", "--data", f"{blobs}:splits", "--data-arg", "n=240", *common, "--name", "cli")
    assert done.returncode == 0, done.stderr
    assert "240 train, 60 test items of (2,) float32" in done.stdout
    recorded = yaml.safe_load((out / "cli" / "config.yaml").read_text())["data"]
    assert recorded["name"] == f"{blobs}:splits" and recorded["args"] == {"n": 240}
    assert recorded["file"] == str(blobs) and len(recorded["file_sha256"]) == 64 and recorded["signature"]

    spec = importlib.util.spec_from_file_location("blobs_here", blobs)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tocha.train(data=module.splits(240), model="mlp", hidden_sizes=[16], epochs=2, out_dir=str(out),
                run_name="python", **QUIET)  # fmt: skip
    assert same_weights(trained(out / "cli"), trained(out / "python"))

    # read again through the same file: evaluate scores the test split training scored
    final = json.loads((out / "cli" / "summary.json").read_text())["final_test_loss"]
    done = run_main("evaluate", out / "cli", "--out", tmp_path / "eval")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["loss"] == pytest.approx(final)
    done = run_main("summary", "--data", f"{blobs}:splits", "--model", "mlp")
    assert done.returncode == 0 and "input (2,)" in done.stdout, done.stderr


def test_a_file_never_chooses_the_data_code_that_runs(blobs, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    assert run_main("train", "--data", f"{blobs}:splits", "--model", "linear", "--epochs", "1",
                    "--out", out, "--name", "a", "--no-progress").returncode == 0  # fmt: skip
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.py"
    hostile.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + BLOBS)
    config = yaml.safe_load((out / "a" / "config.yaml").read_text())
    config["data"].update(name=f"{hostile}:splits", file=str(hostile))  # the signature no longer fits
    config["run_name"] = "b"
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump(config))
    done = run_main("train", "--config", tmp_path / "hostile.yaml", "--no-progress")
    assert done.returncode == 2 and "--data-file" in done.stderr and "--trust-code" in done.stderr
    assert not marker.exists() and not (out / "b").exists()

    # another user's run (another key): evaluate and resume refuse its data code, --trust-code runs it
    monkeypatch.setenv("TOCHA_TRUST_KEY", str(tmp_path / "other.key"))
    done = run_main("evaluate", out / "a", "--out", tmp_path / "e1")
    assert done.returncode == 2 and "the data splits is code" in done.stderr
    done = run_main("evaluate", out / "a", "--out", tmp_path / "e2", "--trust-code")
    assert done.returncode == 0, done.stderr

    # a changed file: refused as recorded, naming the line; named with --data-file, used
    blobs.write_text(BLOBS.replace("* 0.7", "* 0.70"))
    done = run_main("train", "--resume", out / "a", "--epochs", "2", "--trust-code")
    assert done.returncode == 2 and "changed since the run was trained" in done.stderr
    assert "--data-file" in done.stderr
    done = run_main("train", "--resume", out / "a", "--epochs", "2", "--data-file", blobs)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("name", "args", "said"),
    [
        ("nothing", [], "has no 'nothing'; it defines Blobs, splits, TENSORS"),
        ("Dataset", [], "is imported there (from torch.utils.data.dataset)"),
        ("TENSORS", ["--data-arg", "n=3"], "is data already, not a function: it takes no --data-arg"),
        ("splits", ["--data-arg", "size=3"], "splits takes no argument 'size'; it takes n"),
        ("splits", ["--data-arg", "n=-4"], "splits(n=-4)"),
    ],
)
def test_a_wrong_name_or_argument_is_one_line(blobs, tmp_path, name, args, said):
    done = run_main("train", "--data", f"{blobs}:{name}", *args, "--out", tmp_path / "runs", "--no-progress")
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def test_tensors_in_a_file_regress_and_compare_trains_each_cell_from_the_file(blobs, tmp_path):
    done = run_main("compare", "--data", f"{blobs}:TENSORS", "--vary", "model=linear,mlp", "--seeds", "1",
                    "--epochs", "2", "--out", tmp_path / "report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = sorted((tmp_path / "report" / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["data"]["task"] == "regression" and config["data"]["signature"]
    done = run_main("compare", "--data", f"{blobs}:TENSORS", "--vary", "model=linear", "--seeds", "1",
                    "--baselines", "linear", "--out", tmp_path / "r2")  # fmt: skip
    assert done.returncode == 2 and "baselines read their data by name" in done.stderr
    assert os.listdir(tmp_path / "report")


def test_two_processes_read_the_file_each_and_train_what_one_does(blobs, tmp_path):
    import subprocess
    import sys

    from tocha.runs.checkpoint import load_checkpoint

    args = ["--data", f"{blobs}:splits", "--data-arg", "n=300", "--model", "mlp", "--hidden-sizes", "16",
            "--batch-size", "30", "--epochs", "2", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    done = run_main("train", *args, "--name", "one")  # one process: this one
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "tocha", "train", *args, "--nproc", "2", "--name", "two"],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    one, two = load_checkpoint(tmp_path / "one")["model"], load_checkpoint(tmp_path / "two")["model"]
    assert all(torch.allclose(one[k], two[k], atol=1e-6) for k in one)


SQUARES = """import torch


def squares(n=200):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = (torch.rand(n, 1, 8, 8, generator=g) * 100).to(torch.uint8)
    x[y == 1, :, 2:6, 2:6] = 250
    return x, y
"""


def test_a_prepared_folder_of_your_images_trains_from_disk_to_the_weights_of_memory(tmp_path):
    (tmp_path / "imgs.py").write_text(SQUARES)
    source = f"{tmp_path / 'imgs.py'}:squares"
    done = run_main("data", "prepare", source, "--data-arg", "n=300", "--out", tmp_path / "prepared")
    assert done.returncode == 0, done.stderr
    common = ["--model", "mlp", "--epochs", "2", "--out", tmp_path / "runs", "--no-progress"]
    assert (
        run_main("train", "--data", source, "--data-arg", "n=300", *common, "--name", "memory").returncode
        == 0
    )
    done = run_main("train", "--data", tmp_path / "prepared", "--in-memory", "no", *common, "--name", "disk")
    assert done.returncode == 0, done.stderr
    assert same_weights(trained(tmp_path / "runs" / "memory"), trained(tmp_path / "runs" / "disk"))
    (tmp_path / "rows.py").write_text("import torch\nROWS = (torch.zeros(10, 3), torch.arange(10) % 2)\n")
    done = run_main("data", "prepare", f"{tmp_path / 'rows.py'}:ROWS", "--out", tmp_path / "p2")
    assert done.returncode == 2 and "writes image bytes, (C, H, W) uint8" in done.stderr
