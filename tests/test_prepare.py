"""`tocha data prepare`: a dataset decoded once into a prepared folder trains to the very weights
its source trains to, a prepare cut short goes on to the same bytes, and a damaged, stale or
unfinished folder is one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_main, stopped_after_epoch_one_then_resumed, write_image_folder

from tocha.config import RunConfig, set_value
from tocha.data import prepare as prepare_module
from tocha.data.prepare import prepare
from tocha.runs.checkpoint import load_checkpoint
from tocha.training import train

QUIET = {"log": lambda _line: None, "progress": False}


def trained_weights(tmp_path: Path, data: str, name: str, **values: object) -> dict[str, torch.Tensor]:
    config = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
    for key, value in {"data.name": data, "model.name": "mlp", "model.hidden_sizes": [16], "train.epochs": 2,
                       "train.threads": 1, **values}.items():  # fmt: skip
        set_value(config, key, value)
    train(config, **QUIET)
    return load_checkpoint(tmp_path / "runs" / name)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    """An image folder of three classes of mixed sizes (resized to the most common as training does)."""
    root = tmp_path / "shapes"
    write_image_folder(root, {"circle": 40, "square": 30, "star": 30}, size=(14, 12))
    write_image_folder(root, {"dot": 3}, size=(20, 9), seed=1)  # another size, resized
    return root


def test_a_prepared_folder_trains_to_the_very_weights_of_its_source(tmp_path, shapes):
    prepare(str(shapes), tmp_path / "prep", workers=2, log=lambda _line: None)
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 82, "test": 21} and manifest["image_size"] == [14, 12]
    assert manifest["classes"] == ["circle", "dot", "square", "star"] and manifest["mode"] == "L"
    from_folder = trained_weights(tmp_path, str(shapes), "folder")
    from_prepared = trained_weights(tmp_path, str(tmp_path / "prep"), "prepared")
    assert same(from_folder, from_prepared)
    evaluated = run_main("evaluate", tmp_path / "runs" / "prepared")
    assert evaluated.returncode == 0 and "prep test split: 21 samples" in evaluated.stdout
    summary = run_main("summary", "--data", tmp_path / "prep", "--model", "linear")
    assert summary.returncode == 0 and "input (1, 14, 12)" in summary.stdout


def test_a_registered_dataset_prepared_trains_as_it_does(tmp_path):
    printed = run_main("data", "prepare", "mnist-sample", "--out", tmp_path / "mnist")
    assert printed.returncode == 0, printed.stderr
    assert f"train on it with tocha train --data {tmp_path / 'mnist'}" in printed.stdout
    limit = {"data.train_limit": 900}
    assert same(trained_weights(tmp_path, "mnist-sample", "registered", **limit),
                trained_weights(tmp_path, str(tmp_path / "mnist"), "prepared", **limit))  # fmt: skip


def test_a_prepare_cut_short_goes_on_to_the_same_bytes(tmp_path, shapes, monkeypatch):
    monkeypatch.setattr(prepare_module, "CHUNK", 8)  # 11 + 3 chunks: cut after 5
    straight = prepare(str(shapes), tmp_path / "straight", workers=2, log=lambda _line: None).parent

    def cut(chunks_written: int) -> None:
        if chunks_written == 5:
            raise KeyboardInterrupt  # what Ctrl-C raises, between two chunks

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare(str(shapes), resumed, workers=2, log=lambda _line: None, after_chunk=cut)
    assert not (resumed / "manifest.json").exists()
    refused = run_main("train", "--data", resumed, "--out", tmp_path / "runs")
    assert refused.returncode == 2 and "a prepare that has not finished" in refused.stderr
    written: list[int] = []
    prepare(str(shapes), resumed, workers=2, log=lambda _line: None, after_chunk=written.append)
    assert len(written) == 14 - 5  # only the chunks that were missing
    local = {".lock", ".verified.json"}  # this machine's: the lock, and when each file was last checked
    names = sorted(p.name for p in straight.iterdir() if p.name not in local)
    assert names == sorted(p.name for p in resumed.iterdir() if p.name not in local)
    assert all((straight / n).read_bytes() == (resumed / n).read_bytes() for n in names)


def test_bad_prepared_folders_and_bad_prepares_are_one_line(tmp_path, shapes):
    prep = tmp_path / "prep"
    assert run_main("data", "prepare", shapes, "--out", prep).returncode == 0

    def refused(*args: object) -> str:
        result = run_main(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        return result.stderr

    train_on = ("train", "--data", prep, "--out", tmp_path / "runs", "--epochs", "1")
    images = prep / "train_images.npy"
    original = images.read_bytes()
    verified = run_main("data", "verify", prep)
    assert verified.returncode == 0 and "4 files" in verified.stdout and "as its SHA-256 was recorded" in \
        verified.stdout  # fmt: skip
    stat = images.stat()
    images.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit, the time put back: only a
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # full check (verify) can see it
    assert "train_images.npy is damaged" in refused("data", "verify", prep)
    images.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit, as a write leaves it
    assert "train_images.npy is damaged" in refused(*train_on)
    images.unlink()
    assert "train_images.npy is missing" in refused(*train_on)
    images.write_bytes(original)
    manifest = json.loads((prep / "manifest.json").read_text())
    (prep / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    assert "prepared in format version 99" in refused(*train_on)
    (prep / "manifest.json").write_text(json.dumps(manifest))
    (shapes / "star" / "new.png").write_bytes((shapes / "star" / "0.png").read_bytes())
    assert "changed since it was prepared" in refused(*train_on)
    assert not (tmp_path / "runs").exists()  # no run folder from any of them
    assert "is inside the source" in refused("data", "prepare", shapes, "--out", shapes / "prepared")
    assert "already holds a prepared dataset" in refused("data", "prepare", shapes, "--out", prep)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    assert "not empty" in refused("data", "prepare", shapes, "--out", tmp_path / "notes")
    assert "--image-size 0x5" in refused(
        "data", "prepare", shapes, "--out", tmp_path / "x", "--image-size", "0x5"
    )
    sized = ("--out", tmp_path / "y", "--image-size", "8x8")
    assert "--image-size is for folders" in refused("data", "prepare", "mnist-sample", *sized)
    from tocha.locks import hold

    busy = tmp_path / "busy"
    busy.mkdir()
    with hold(busy, "a test"):
        assert "is in use by process" in refused("data", "prepare", shapes, "--out", busy)


def test_the_prepared_arrays_are_the_decoded_images(tmp_path, shapes):
    """The files are plain NumPy arrays anyone can read: the first training image is the one
    training decodes for it."""
    from tocha.data.folder import load_folder

    prepare(str(shapes), tmp_path / "prep", workers=1, log=lambda _line: None)
    images = np.load(tmp_path / "prep" / "train_images.npy", mmap_mode="r")
    loaded = load_folder(shapes, log=lambda _line: None)
    assert images.dtype == np.uint8 and images.shape == tuple(loaded.train.images.shape)
    assert np.array_equal(np.asarray(images), loaded.train.images.numpy())


# -- training images read from disk


def test_reading_from_disk_trains_to_the_weights_of_reading_from_memory(tmp_path, shapes):
    """`--in-memory no`: each batch read from the file (sorted rows, then the batch's order), the
    validation carve and `--train-limit` as views; the same weights as the arrays in memory."""
    prepare(str(shapes), tmp_path / "prep", workers=1, log=lambda _line: None)
    data = str(tmp_path / "prep")
    common = {"data.train_limit": 70, "data.augment_translate": 1, "train.batch_size": 16}
    lines: list[str] = []
    config = RunConfig(out_dir=str(tmp_path / "runs"), run_name="said")
    for key, value in {"data.name": data, "data.in_memory": "no", "train.epochs": 1}.items():
        set_value(config, key, value)
    train(config, log=lines.append, progress=False)
    first = next(line for line in lines if "prepared " in line)  # the run's first line
    assert "training images read from disk a batch at a time" in first
    assert same(trained_weights(tmp_path, data, "memory", **common, **{"data.in_memory": "yes"}),
                trained_weights(tmp_path, data, "disk", **common, **{"data.in_memory": "no"}))  # fmt: skip


@pytest.mark.parametrize("shuffle", ["full", "blocks"])
def test_a_run_from_disk_stopped_mid_epoch_resumes_bit_exactly(tmp_path, shapes, shuffle):

    from test_resume import assert_same

    prepare(str(shapes), tmp_path / "prep", workers=1, log=lambda _line: None)

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
        values = {"data.name": str(tmp_path / "prep"), "data.in_memory": "no", "train.epochs": 3,
                  "train.batch_size": 8, "model.name": "mlp", "train.threads": 1,
                  "train.shuffle": shuffle}  # fmt: skip
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    straight = train(config("straight"), **QUIET)
    stopped_after_epoch_one_then_resumed(config("stopped"))
    assert_same(load_checkpoint(tmp_path / "runs" / "stopped"), load_checkpoint(straight.run_dir))


MEASURE = """
import sys, threading, time
from pathlib import Path
import torch
import tocha
from tocha.config import RunConfig, set_value
from tocha.training import train

def anon():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
peak, running = [anon()], [True]
def sample():
    while running[0]:
        peak.append(anon())
        time.sleep(0.01)
base = anon()
threading.Thread(target=sample, daemon=True).start()
config = RunConfig(out_dir=sys.argv[2], run_name="r")
for key, value in {"data.name": sys.argv[1], "data.in_memory": sys.argv[3], "data.val_fraction": 0.01,
                   "model.name": "linear", "train.epochs": 1, "train.batch_size": 1000}.items():
    set_value(config, key, value)
train(config, log=lambda _line: None, progress=False)
running[0] = False
print(max(peak) - base)
"""


def test_training_from_disk_holds_far_less_than_the_dataset(tmp_path):
    """A training split of 235 MB trained from disk: the process's anonymous memory (what it holds,
    not the file's pages the kernel caches and can drop) grows by less than the same run's with the
    images in memory, by most of the split's size."""
    import subprocess
    import sys

    n, rng = 300_000, np.random.default_rng(0)
    prepared = tmp_path / "big"
    prepared.mkdir()
    images = np.lib.format.open_memmap(prepared / "train_images.npy", "w+", np.uint8, (n, 1, 28, 28))
    for start in range(0, n, 50_000):
        images[start : start + 50_000] = rng.integers(0, 256, (min(50_000, n - start), 1, 28, 28), np.uint8)
    images.flush()
    del images
    labels = rng.integers(0, 10, n)
    np.save(prepared / "train_labels.npy", labels)
    np.save(prepared / "test_images.npy", rng.integers(0, 256, (1000, 1, 28, 28), np.uint8))
    np.save(prepared / "test_labels.npy", rng.integers(0, 10, 1000))
    plan = {"kind": "generated", "source": "random pixels", "source_digest": "-", "mode": "L",
            "size": [28, 28], "classes": [str(i) for i in range(10)], "split_rule": None,
            "arrays": {"train": (None, labels), "test": (None, np.zeros(1000))}}  # fmt: skip
    manifest = prepare_module.make_manifest(plan, prepared, lambda _line: None)
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    grown = {}
    for where in ("no", "yes"):  # from disk, then the same run with the images in memory
        done = subprocess.run([sys.executable, "-c", MEASURE, str(prepared), str(tmp_path / where), where],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        grown[where] = int(done.stdout.split()[-1])
    dataset = n * 28 * 28  # 235 MB
    assert grown["yes"] > dataset  # in memory: the split, at least
    assert grown["no"] < grown["yes"] - 0.75 * dataset, grown  # from disk: not the split
