"""docs/guide/text.md, run as printed: each block marked "run by tests/test_text_guide.py", in order,
through a real shell, in a folder holding what the page says it holds (reviews.csv made by the rule
of `text_data.reviews`, the shared data's sunspots.csv); and what the page shows, checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SHARED_DATA
from text_data import reviews, texts_beside_columns

MARK = "<!-- run by tests/test_text_guide.py -->"


def marked_blocks() -> list[str]:
    text = (REPO / "docs" / "guide" / "text.md").read_text()
    return re.findall(re.escape(MARK) + r"\n```bash\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sunspots = SHARED_DATA / "series" / "sunspots.csv"
    if not sunspots.is_file():
        message = f"{sunspots} is not here (the shared data folder)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    root = tmp_path_factory.mktemp("text-guide")
    reviews(root / "reviews.csv")
    texts_beside_columns(root / "shop.csv")
    shutil.copy(sunspots, root / "sunspots.csv")
    bindir = root / "bin"  # `tocha` as installed: this interpreter's
    bindir.mkdir()
    (bindir / "tocha").write_text(f'#!/bin/sh\nexec {sys.executable} -m tocha "$@"\n')
    (bindir / "tocha").chmod(0o755)
    return root


def run_block(workdir: Path, index: int) -> str:
    env = {
        **os.environ,
        "PATH": f"{workdir / 'bin'}:{os.environ['PATH']}",
        "TOCHA_CACHE_DIR": str(workdir / "cache"),
    }
    done = subprocess.run(
        [shutil.which("bash") or "bash", "-e", "-c", marked_blocks()[index]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_page_has_its_four_blocks():
    blocks = marked_blocks()
    assert len(blocks) == 5
    assert "--text review" in blocks[0] and "--baselines tfidf" in blocks[1] and "shop.csv" in blocks[2]
    assert "--task next-token" in blocks[3] and "--task forecast" in blocks[4]


def test_text_classification_as_printed(workdir):
    said = run_block(workdir, 0)
    assert re.search(r"done: test accuracy (9\d|100)\.\d\d%", said)
    assert "\n1,negative," in said and "\n2,positive," in said  # "not good", "not bad"
    said = run_block(workdir, 1)
    bag = re.search(r"model=bag\s+2\s+[\d.]+ ± [\d.]+\s+([\d.]+) ±", said)
    assert bag and float(bag[1]) < 70  # order-blind: near a coin's odds
    assert re.search(r"model=gru\s+2\s+(9\d|100)\.\d\d", said) and "tfidf (scikit-learn)" in said


def test_text_beside_columns_as_printed(workdir):
    said = run_block(workdir, 2)
    assert "beside it 3 features from price, shop" in said
    assert re.search(r"done: test accuracy (9\d|100)\.\d\d%", said)
    assert "\n1,yes," in said and "\n2,no," in said  # the same words, the shop turns the answer round


def test_generating_text_as_printed(workdir):
    said = run_block(workdir, 3)
    assert (workdir / "pydoc.txt").stat().st_size > 400_000
    ppl = re.search(r"done: test loss [\d.]+, accuracy [\d.]+%, perplexity ([\d.]+)", said)
    assert ppl and float(ppl[1]) < 8  # a uniform guess over the vocabulary would be about 100
    assert "\nThe " in said  # the prompt, then the text


def test_forecasting_as_printed(workdir):
    said = run_block(workdir, 4)
    assert "309 rows in YEAR order" in said
    assert re.search(r"\n2008,[-\d.e]+,[-\d.e]+,[-\d.e]+\n", said)
    for baseline in ("naive", "seasonal_naive", "linear"):
        assert f"{baseline} (scikit-learn)" in said
