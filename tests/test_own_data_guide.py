"""docs/guide/own-data.md, run as printed: its two Python snippets, beside the files they read."""

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
    first, second = guide_blocks("python")
    env = {**os.environ, "TOCHA_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", first], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (shown,) = guide_blocks("text")
    pattern = re.escape(shown.strip()).replace(r"0\.8\ s", r"[\d.]+\ s")
    assert re.search(pattern, done.stdout), (shown, done.stdout)
    assert re.search(r"test accuracy \d+\.\d\d% on python:FashionMNIST", done.stdout)
    done = subprocess.run([sys.executable, "-c", second], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"test accuracy \d+\.\d\d%, classes \['0', '1', '2', '3'\]", done.stdout)
