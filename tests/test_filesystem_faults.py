"""Filesystems that refuse to be written, for real (tmpfs mounts: full, read-only): one line naming
the path, exit 2, and the run folder's checkpoint and metrics.csv consistent with each other."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from helpers import run_main


def as_root(*command: str) -> subprocess.CompletedProcess:
    """`command` as root: directly when we are, else through passwordless sudo."""
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run([*prefix, *command], capture_output=True, text=True)


@contextlib.contextmanager
def mounted(where: Path, options: str):
    """A tmpfs at `where` with `options`, owned by this user; skipped where mounting is not allowed,
    except under CI (which has root or sudo: it installs packages with them)."""
    where.mkdir(parents=True, exist_ok=True)
    owner = f"uid={os.getuid()},gid={os.getgid()}"
    done = as_root("mount", "-t", "tmpfs", "-o", f"{options},{owner}", "tmpfs", str(where))
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs (needs root or sudo): {done.stderr.strip()}")
    try:
        yield where
    finally:
        as_root("umount", "-l", str(where))


def one_line(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_full_disk_is_one_line_and_the_run_folder_stays_consistent(tmp_path):
    with mounted(tmp_path / "small", "size=400k") as small:
        result = run_main("train", "--data", "iris", "--model", "mlp", "--hidden-sizes", "512,512",
                          "--epochs", "2", "--out", small, "--name", "r")  # fmt: skip
        line = one_line(result)
        assert "no space left on the device" in line and str(small / "r") in line
        run = small / "r"
        assert not (run / "metrics.csv").exists()  # written only after its checkpoint, which did not fit
        assert not [p for p in run.iterdir() if p.name.startswith(".tmp-")]  # no half-written file left


def test_a_read_only_place_is_one_line(tmp_path):
    trained = run_main("train", "--data", "iris", "--model", "linear", "--epochs", "1",
                       "--out", tmp_path / "w", "--name", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    with mounted(tmp_path / "ro", "ro,size=1m") as ro:
        assert "Read-only file system" in one_line(run_main("train", "--data", "iris", "--out", ro / "runs"))
    with mounted(tmp_path / "snapshot", "size=4m") as snapshot:
        subprocess.run(["cp", "-r", str(tmp_path / "w" / "r"), str(snapshot)], check=True)
        assert as_root("mount", "-o", "remount,ro", str(snapshot)).returncode == 0
        assert "Read-only file system" in one_line(
            run_main("evaluate", snapshot / "r")
        )  # writes inside the run
        assert "cannot write in" in one_line(run_main("train", "--resume", snapshot / "r", "--epochs", "2"))


def test_paths_of_the_wrong_kind_are_one_line(tmp_path):
    trained = run_main(
        "train", "--data", "iris", "--model", "linear", "--epochs", "1", "--out", tmp_path, "--name", "r"
    )
    assert trained.returncode == 0, trained.stderr
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    assert "a file, not a folder" in one_line(run_main("train", "--data", "iris", "--out", a_file))
    one_line(run_main("evaluate", tmp_path / "r", "--out", a_file))
    (tmp_path / "folder.png").mkdir()
    one_line(run_main("data", "show", "mnist-sample", "--out", tmp_path / "folder.png"))
    assert a_file.read_text() == "not a folder"


def test_a_full_cache_costs_speed_not_the_run(tmp_path, monkeypatch):
    with mounted(tmp_path / "cache", "size=100k") as cache:
        monkeypatch.setenv("TOCHA_CACHE_DIR", str(cache))
        result = run_main("train", "--data", "mnist-sample", "--model", "linear", "--epochs", "1",
                          "--out", tmp_path / "runs", "--name", "r")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "could not keep decoded" in result.stderr and "no space" in result.stderr.lower()
        assert not [p for p in (cache / "decoded").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("fmt", ["pt2", "safetensors", "onnx"])
def test_an_export_to_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, fmt):
    """The exporters wrote their files themselves (pt2 aborted the interpreter on a full disk, exit
    134; safetensors raised its own error): now every export is made in memory and written by tocha."""
    pytest.importorskip("onnxruntime")
    trained = run_main("train", "--data", "mnist-sample", "--model", "mlp", "--hidden-sizes", "256",
                       "--epochs", "1", "--out", tmp_path, "--name", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    with mounted(tmp_path / "small", "size=100k") as small:
        line = one_line(run_main("export", tmp_path / "r", "--format", fmt, "--out", small / f"m.{fmt}"))
        assert "no space left on the device" in line and f"m.{fmt}" in line
        assert list(small.iterdir()) == []  # no temporary file, no half an export


def free_bytes(where: Path) -> int:
    st = os.statvfs(where)
    return st.f_bavail * st.f_frsize


def test_a_prepare_onto_a_full_disk_is_one_line_and_looks_unfinished(tmp_path):
    """The prepared arrays are memory-mapped (a write into a page the disk has no room for is a
    SIGBUS, not an error): the room all of them need is measured before any is taken, so a disk
    without it is one line, nothing is taken (not a byte: a refusal used to leave the disk full),
    the folder holds nothing a run trains on, and the same command goes on once there is room."""
    from helpers import write_image_folder

    write_image_folder(tmp_path / "shapes", {"a": 10, "b": 10})
    with mounted(tmp_path / "small", "size=1m") as small:
        out = small / "prep"
        command = ("data", "prepare", tmp_path / "shapes", "--out", out, "--image-size", "256x256")
        free = free_bytes(small)
        line = one_line(run_main(*command))
        need = 20 * 256 * 256 + 20 * 8 + 4 * 128  # 16 + 4 images, their labels, four .npy headers
        assert f"{out}: the prepared arrays need {need:,} bytes" in line and "nothing was written" in line
        assert free_bytes(small) == free  # nothing taken
        assert sorted(p.name for p in out.iterdir()) == []  # its lock let go of, and removed
        one_line(run_main("train", "--data", out, "--out", tmp_path / "runs"))
        assert as_root("mount", "-o", "remount,size=4m", str(small)).returncode == 0
        done = run_main(*command)
        assert done.returncode == 0, done.stderr


def test_a_table_prepare_onto_a_full_disk_takes_nothing(tmp_path):
    """A table's arrays are sized once its rows are read and encoded; a disk without their room is
    one line before any of them is taken, and the labels already written beside them go too."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.4f}" for v in rng.normal(size=12)) + f",{'abc'[i % 3]}" for i in range(20_000)]
    csv = tmp_path / "wide.csv"
    csv.write_text(",".join(f"x{i}" for i in range(12)) + ",kind\n" + "\n".join(rows) + "\n")
    with mounted(tmp_path / "small", "size=2m") as small:
        out = small / "prep"
        free = free_bytes(small)
        line = one_line(run_main("data", "prepare", csv, "--target", "kind", "--out", out))
        assert f"{out}: the prepared arrays need 1,120,768 bytes" in line and "nothing was written" in line
        assert free_bytes(small) == free  # its labels' file (160 kB, taken first) given back too
        assert sorted(p.name for p in out.iterdir()) == []
