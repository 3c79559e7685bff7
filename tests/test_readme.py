"""The README's "Use your model in your own code" and "Your own model" snippets, run exactly as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from helpers import REPO

from tocha.config import RunConfig
from tocha.data.sample_files import write_samples
from tocha.exports import export_model
from tocha.exports.onnx_predict import predict_onnx
from tocha.inference.predict import predict_files
from tocha.training import train

SECTION = "## Use your model in your own code"
PNGS = ("fashionMNIST_00_9.png", "fashionMNIST_01_2.png")


def snippets() -> list[str]:
    section = (REPO / "docs" / "guide" / "python.md").read_text()
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_three_routes():
    blocks = snippets()[:3]  # the fourth, PyTorch's own loss and optimizer: tests/test_given_pieces.py
    assert "tocha.load" in blocks[0]
    assert "safetensors" in blocks[1] and "import tocha" not in blocks[1] and "from tocha" not in blocks[1]
    assert "onnxruntime" in blocks[2] and "torch" not in blocks[2] and "tocha" not in blocks[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """What the snippets expect beside them: runs/first with its exports, and the two PNGs as a user
    has them (`tocha data samples .`)."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("readme")
    write_samples(root, 2)
    config = RunConfig(out_dir=str(root / "runs"), run_name="first")
    config.data.name = "fashion-mnist-sample"
    run = train(config, log=lambda _line: None, progress=False)
    for fmt in ("onnx", "safetensors"):
        export_model(run.run_dir, fmt, log=lambda _line: None)
    return root


@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_snippet_runs_as_printed(workdir, index):
    env = {**os.environ, "TOCHA_CACHE_DIR": str(workdir / "cache")}
    done = subprocess.run([sys.executable, "-c", snippets()[index]], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    top = [
        r["top"][0]["class"] for r in predict_files(workdir / "runs" / "first", [workdir / p for p in PNGS])
    ]
    lines = done.stdout.strip().splitlines()
    if index == 0:  # the two predictions, after the training lines
        assert [line.split(" ")[0] + (" " + line.split(" ")[1] if line.startswith("Ankle") else "")
                for line in lines[-2:]] == top  # fmt: skip
    else:  # the second image's class, by plain PyTorch and by onnxruntime
        assert lines[-1].startswith(top[1])


OWN = "## Your own model"


def own_snippets() -> list[str]:
    section = (REPO / "docs" / "guide" / "own-model.md").read_text()
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_notebook_route_runs_as_printed(tmp_path):
    """A class defined where the code runs (no file to import it from): trained, evaluated, asked
    about two real PNGs and exported, in one process."""
    pytest.importorskip("onnxruntime")
    (snippet,) = [block for block in own_snippets() if "import tocha" in block]
    write_samples(tmp_path, 2)  # as `tocha data samples .` writes them
    env = {**os.environ, "TOCHA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("test accuracy ") for line in lines)
    onnx = tmp_path / "runs" / "mine" / "model.onnx"
    assert onnx.is_file() and "parity on 1000 test images" in lines[-1]
    top = [r["top"][0]["class"] for r in predict_onnx(onnx, [tmp_path / p for p in PNGS])]
    assert [line.split(",")[0].rsplit(" ", 1)[0] for line in lines[-3:-1]] == top  # the export agrees
    assert "model.txt" in {p.name for p in (tmp_path / "runs" / "mine").iterdir()}
