"""`tocha data prepare`: a dataset decoded once into a prepared folder trains to the very weights
its source trains to, a prepare cut short goes on to the same bytes, and a damaged, stale or
unfinished folder is one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_main, stopped_after_epoch_one_then_resumed, write_image_folder

from tocha.config import RunConfig, set_value
from tocha.data import prepare as prepare_module
from tocha.data.prepare import prepare
from tocha.files import file_sha256
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


def one_line(result: object) -> str:
    """A refusal: exit 2, one line on stderr, no traceback."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def same_files(a: Path, b: Path) -> bool:
    """Two prepared folders hold the same files with the same bytes (but for this machine's lock and
    its record of when each file was last checked)."""
    local = {".lock", ".verified.json"}
    names = sorted(p.name for p in a.iterdir() if p.name not in local)
    return names == sorted(p.name for p in b.iterdir() if p.name not in local) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


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
    assert same_files(straight, resumed)


def test_an_array_lost_from_a_prepare_in_progress_is_written_again(tmp_path, shapes, monkeypatch):
    """A prepare cut short, then its training images deleted: going on, the chunks its record says
    were written are written again (not left as the zeros of a new file)."""
    monkeypatch.setattr(prepare_module, "CHUNK", 8)
    straight = prepare(str(shapes), tmp_path / "straight", workers=2, log=lambda _line: None).parent

    def cut(chunks_written: int) -> None:
        if chunks_written == 5:
            raise KeyboardInterrupt

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare(str(shapes), resumed, workers=2, log=lambda _line: None, after_chunk=cut)
    (resumed / "train_images.npy").unlink()
    written: list[int] = []
    prepare(str(shapes), resumed, workers=2, log=lambda _line: None, after_chunk=written.append)
    assert len(written) == 14  # every chunk: the training split's record went with its images
    assert same_files(straight, resumed)


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


def test_a_prepared_folder_that_lost_its_manifest_is_an_unfinished_prepare(tmp_path, shapes):
    """Its arrays alone (manifest.json deleted, or not copied): said as a prepare to run again, not
    read as an image folder ("no class folders"); that command prepares it anew, to the same bytes."""
    prep, straight = tmp_path / "prep", tmp_path / "straight"
    assert run_main("data", "prepare", shapes, "--out", straight).returncode == 0
    assert run_main("data", "prepare", shapes, "--out", prep).returncode == 0
    (prep / "manifest.json").unlink()
    line = one_line(run_main("train", "--data", prep, "--out", tmp_path / "runs", "--epochs", "1"))
    assert f"{prep}: an unfinished prepare" in line and f"tocha data prepare SOURCE --out {prep}" in line
    assert "class folders" not in line and not (tmp_path / "runs").exists()
    again = run_main("data", "prepare", shapes, "--out", prep)
    assert again.returncode == 0, again.stderr
    assert same_files(straight, prep)


def test_a_prepare_that_fails_removes_the_arrays_it_made(tmp_path, shapes, monkeypatch):
    """An error (here images that became unreadable while the prepare ran) gives back the room this
    run took: its arrays go, with their chunks' records; the arrays an earlier run made stay."""
    monkeypatch.setattr(prepare_module, "CHUNK", 8)  # train: 11 chunks, test: 3
    out = tmp_path / "prep"

    def cut(chunks_written: int) -> None:
        if chunks_written == 2:
            raise KeyboardInterrupt  # a stop, not an error: what is written stays, to go on from

    with pytest.raises(KeyboardInterrupt):
        prepare(str(shapes), out, workers=2, log=lambda _line: None, after_chunk=cut)
    assert (out / "train_images.npy").is_file() and not (out / "test_images.npy").exists()

    def spoil(chunks_written: int) -> None:
        if chunks_written == 11 - 2:  # the training split done: the test split's images go bad
            for image in shapes.rglob("*.png"):
                image.write_bytes(b"not a png")

    from tocha.errors import TochaError

    with pytest.raises(TochaError, match="not a readable image"):  # one line (it crossed from a worker)
        prepare(str(shapes), out, workers=2, log=lambda _line: None, after_chunk=spoil)
    assert sorted(p.name for p in out.iterdir()) == [
        ".progress.json",
        "train_images.npy",
        "train_labels.npy",
    ]  # fmt: skip (the lock let go of)
    done = json.loads((out / ".progress.json").read_text())["done"]
    assert done == {"train": list(range(0, 82, 8))}  # the test split's records went with its arrays


# -- prepared folders written by hand: each manifest field and each array's header checked first


@pytest.fixture(scope="module")
def mnist_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real prepared folder (the bundled MNIST sample: 4,000 train, 1,000 test), made once."""
    out = tmp_path_factory.mktemp("prepared") / "mnist"
    prepare("mnist-sample", out, log=lambda _line: None)
    return out


def rewrite(folder: Path, name: str, change: object) -> None:
    """Save `change(array)` over the folder's array `name` (pickled where it holds Python objects)."""
    array = np.load(folder / name)
    np.save(folder / name, change(array), allow_pickle=True)


def cut_data(folder: Path) -> None:
    """The training labels without their last value, the header left as it was."""
    path = folder / "train_labels.npy"
    path.write_bytes(path.read_bytes()[:-8])


def outside(manifest: dict) -> None:
    manifest["files"]["../train_images.npy"] = manifest["files"].pop("train_images.npy")


CRAFTED = {  # what is done to a copy of the folder (its manifest, then its files) -> what is said
    "no files record": (lambda m: m.pop("files"), None, '"files" is missing'),
    "classes null": (lambda m: m.update(classes=None), None, '"classes" is null'),
    "labels of objects": (None, lambda f: rewrite(f, "train_labels.npy", lambda a: a.astype(object)),
                          "train_labels.npy holds object (4000,) where int64 (4000,) belongs"),
    "float64 images": (None, lambda f: rewrite(f, "train_images.npy", lambda a: a.astype(np.float64)),
                       "train_images.npy holds float64 (4000, 1, 28, 28) where uint8"),
    "3,000 images for 4,000 labels": (None, lambda f: rewrite(f, "train_images.npy", lambda a: a[:3000]),
                                      "holds uint8 (3000, 1, 28, 28) where uint8 (4000, 1, 28, 28) belongs"),
    "float labels": (None, lambda f: rewrite(f, "train_labels.npy", lambda a: a.astype(np.float32)),
                     "train_labels.npy holds float32 (4000,) where int64 (4000,) belongs"),
    "Fortran order": (None, lambda f: rewrite(f, "test_images.npy", np.asfortranarray), "in Fortran order"),
    "data cut short": (None, cut_data, "train_labels.npy is 32,120 bytes where its header says 32,128"),
    "mean not a number": (lambda m: m.update(mean=[float("nan")]), None, '"mean" is [NaN]'),
    "std of 3 channels": (lambda m: m.update(std=[0.3, 0.3, 0.3]), None, '"std" is [0.3, 0.3, 0.3]'),
    "a file outside the folder": (outside, None, '"files" is'),
    "a count in words": (lambda m: m["counts"].update(train="4000"), None, '"counts" is'),
    "one side": (lambda m: m.update(image_size=[28]), None, '"image_size" is [28]'),
    "an unknown mode": (lambda m: m.update(mode="CMYK"), None, '"mode" is "CMYK"'),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_prepared_folder_is_one_line_before_any_array_is_read(tmp_path, mnist_prepared, case):
    """A folder whose manifest records the SHA-256 of what it holds (so the hash check passes) but
    whose fields or arrays are not what tocha writes: exit 2, one line naming the folder and what
    is wrong, before any array is loaded (an object array is never unpickled)."""
    change_manifest, change_files, said = CRAFTED[case]
    folder = tmp_path / "crafted"
    shutil.copytree(mnist_prepared, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if change_files:
        change_files(folder)
    if change_manifest:
        change_manifest(manifest)
    for name, record in manifest.get("files", {}).items():  # the hashes made to match the files
        if (folder / name).is_file() and isinstance(record, dict):
            record.update(bytes=(folder / name).stat().st_size, sha256=file_sha256(folder / name))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    line = one_line(run_main("train", "--data", folder, "--out", tmp_path / "runs", "--epochs", "1"))
    assert line.startswith(f"tocha: error: {folder}: ") and said in line and "prepare it again" in line
    assert not (tmp_path / "runs").exists()


# -- a prepare killed while its processes decode


KILLABLE = """
import sys

from tocha.data import prepare

prepare.CHUNK = 4  # many chunks, each recorded as it is written: a kill lands between two
if __name__ == "__main__":  # the decoding processes are spawned: they import this file too
    from tocha.cli import main

    sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """600 RGB images (a few seconds to prepare, 4 at a time), and their prepare run straight."""
    root = tmp_path_factory.mktemp("many")
    write_image_folder(root / "images", {"a": 300, "b": 300}, size=(64, 64), mode="RGB")
    prepare(str(root / "images"), root / "straight", workers=2, log=lambda _line: None)
    return root / "images", root / "straight"


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a live process (an ended one nobody has reaped yet, a zombie, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the decoding processes in /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_prepare_killed_while_decoding_leaves_no_process_and_goes_on(tmp_path, many_images, sig):
    """The prepare's process killed once a chunk is written: its decoding processes end with it
    (within seconds), none keeps the folder's lock, and the same command goes on to the bytes of
    an uninterrupted prepare."""
    source, straight = many_images
    out = tmp_path / "prep"
    (tmp_path / "killable.py").write_text(KILLABLE)
    command = ["data", "prepare", str(source), "--out", str(out), "--workers", "2"]
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen([sys.executable, str(tmp_path / "killable.py"), *command],
                                   stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    progress, deadline = out / ".progress.json", time.monotonic() + 120
    while not (progress.is_file() and json.loads(progress.read_text())["done"]):  # decoding, a chunk in
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
        time.sleep(0.01)
    workers = children(process.pid)
    assert len(workers) >= 2  # its two decoding processes (and multiprocessing's resource tracker)
    process.send_signal(sig)
    assert process.wait(timeout=60) == -sig
    killed = time.monotonic()
    while left := [pid for pid in workers if running(pid)]:
        assert time.monotonic() - killed < 5, f"still running after 5 s: {left}"
        time.sleep(0.02)
    assert not (out / "manifest.json").exists() and json.loads(progress.read_text())["done"]  # cut short
    again = run_main(*command)
    assert again.returncode == 0, again.stderr
    assert same_files(straight, out)


HOLDER = """
import os, sys, time
from pathlib import Path

from tocha.locks import hold

with hold(Path(sys.argv[1]), "a test"):
    child = os.fork()  # shares the open lock file, as forked decoding processes did
    if child == 0:
        time.sleep(120)
        os._exit(0)
    Path(sys.argv[2]).write_text(str(child))
    os._exit(0)  # this process ends; its child holds the lock on
"""


def test_a_lock_held_by_a_dead_process_s_child_names_the_child(tmp_path, shapes):
    """A lock whose recorded holder has ended but whose open file a child of it kept: the refusal
    names the child to stop, and the same command goes on once it is gone."""
    out = tmp_path / "prep"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(tmp_path / "child")])
    assert holder.wait(timeout=60) == 0
    child = int((tmp_path / "child").read_text())
    try:
        line = one_line(run_main("data", "prepare", shapes, "--out", out))
        assert f"{out} is locked by process {child}, left running by process {holder.pid}, which has " in line
        assert f"stop it first (kill {child})" in line
    finally:
        os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while running(child):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    again = run_main("data", "prepare", shapes, "--out", out)
    assert again.returncode == 0, again.stderr


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
