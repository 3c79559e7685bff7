"""docs/guide/own-data.md, run as printed: its Python snippets beside the files they read, its file
`fashion_data.py` written as printed, and its commands through a real shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def guide_blocks(kind: str) -> list[str]:
    from helpers import REPO

    text = (REPO / "docs" / "guide" / "own-data.md").read_text()
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def test_the_guide_runs_as_printed(shared_data, tmp_path):
    """docs/guide/own-data.md's two snippets, run as printed beside the files they read; the line the
    page shows is the line the first one prints (its time aside)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fashion-mnist").symlink_to(shared_data / "fashion-mnist")
    first, second, data_file = guide_blocks("python")
    env = {**os.environ, "TOCHA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", first], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = guide_blocks("text")[0]  # the line the first snippet prints (the second: not run, torchvision)
    pattern = re.escape(shown.strip()).replace(r"0\.8\ s", r"[\d.]+\ s")
    assert re.search(pattern, done.stdout), (shown, done.stdout)
    assert re.search(r"test accuracy \d+\.\d\d% on python:FashionMNIST", done.stdout)
    done = subprocess.run([sys.executable, "-c", second], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"test accuracy \d+\.\d\d%, classes \['0', '1', '2', '3'\]", done.stdout)


def test_the_command_line_route_runs_as_printed(shared_data, tmp_path):
    """The page's `fashion_data.py` written as printed, and its commands run through bash in order:
    a run trained from the file, evaluated through it again, and a summary of a model on it."""
    import shutil

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fashion-mnist").symlink_to(shared_data / "fashion-mnist")
    *_, data_file = guide_blocks("python")
    assert data_file.startswith("# fashion_data.py\n")
    (tmp_path / "fashion_data.py").write_text(data_file)
    (commands,) = guide_blocks("bash")
    bindir = tmp_path / "bin"  # `tocha` as installed: this interpreter's
    bindir.mkdir()
    (bindir / "tocha").write_text(f'#!/bin/sh\nexec {sys.executable} -m tocha "$@"\n')
    (bindir / "tocha").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "TOCHA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([shutil.which("bash") or "bash", "-e", "-c", commands], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fashion_data.py:splits: given by fashion_data.py: 2,000 train, 2,000 test items" in done.stdout
    assert re.search(r"done: test accuracy \d+\.\d\d%", done.stdout)
    assert "wrote runs/own-data/eval-" in done.stdout and "mlp for fashion_data.py:splits" in done.stdout
