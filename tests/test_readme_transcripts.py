"""The console transcripts of the README and the user guide (docs/guide/), run: each command of the
checked blocks runs for real, in order (later blocks use `runs/first` from the README's first), and
every line a page prints must appear in its
output, in order. Numbers may differ (timings, and results that depend on the machine); `...` in a
README line stands for any text, and a line that is only `...` for any number of lines.

Blocks left out need what a test cannot have: full datasets trained for minutes (`--data mnist
--epochs 10`, the fine-tuning tables), a file that is only an example (`houses.csv`), a server that
keeps running (`tocha serve` and its curl calls) or two processes (`--nproc 2`, run by
tests/test_distributed.py).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

CHECKED = (
    "$ tocha train --name first",
    "$ tocha train --data mnist-sample --model mlp --epochs 30 --early-stop 3",
    "$ tocha evaluate runs/first",
    "$ tocha data samples .",
    "$ tocha train --data synthetic-regression",
    "$ tocha export runs/first",
    "$ tocha summary --model tinyvgg",
    "$ tocha summary --model my_models.py:FashionMNISTModelV2",
    "$ tocha lesson list",
    "$ tocha models",
    "$ tocha data list",
    "$ tocha train --data imagenet",
)
NUMBER = r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"
PNGS = ("fashionMNIST_00_9.png", "fashionMNIST_01_2.png")


def documents() -> list[Path]:
    """The README, then the user guide's pages in the guide's order (later blocks use earlier runs)."""
    index = (REPO / "docs" / "guide" / "README.md").read_text()
    pages = re.findall(r"^- \[[^\]]+\]\(([^)]+\.md)\)$", index, flags=re.M)
    return [REPO / "README.md", *(REPO / "docs" / "guide" / page for page in pages)]


def blocks() -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """(file:line, [(command, expected lines)]) of every checked console block, in reading order."""
    found = []
    for document in documents():
        found += file_blocks(document)
    return found


def file_blocks(document: Path) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    text = document.read_text()
    found = []
    for match in re.finditer(r"```console\n(.*?)```", text, flags=re.S):
        lines = match.group(1).splitlines()
        if not lines or not lines[0].startswith(CHECKED):
            continue
        steps: list[tuple[str, list[str]]] = []
        pending = ""
        for line in lines:
            if pending or line.startswith("$ "):
                pending += line.removeprefix("$ ").strip() + " "
                if not line.endswith("\\"):
                    command = re.split(r"\s{2,}#\s", pending.replace("\\ ", ""))[0].strip()
                    steps.append((command, []))
                    pending = ""
            else:
                steps[-1][1].append(line)
        where = f"{document.relative_to(REPO)}:{text[: match.start()].count(chr(10)) + 1}"
        found.append((where, steps))
    return found


def pattern(line: str) -> re.Pattern[str]:
    """A README line as a regular expression: numbers vary (and so the spaces that pad them), `...`
    is any text."""
    parts = re.split(rf"(\.\.\.|{NUMBER})", line.strip())
    regex = "".join(".*?" if p == "..." else NUMBER if re.fullmatch(NUMBER, p) else literal(p) for p in parts)
    return re.compile(regex.replace("threads", "threads?"))  # "1 thread" when only one core is idle


def literal(text: str) -> str:
    """Text as it must appear, except that a run of spaces may be longer or shorter: columns of
    numbers are padded to the numbers' widths, which differ between machines."""
    return r"\s+".join(re.escape(piece) for piece in re.split(r"\s+", text))


def check_output(expected: list[str], output: str, command: str) -> None:
    actual = [line.strip() for line in output.splitlines()]
    at = 0
    for line in expected:
        if line.strip() in ("", "..."):
            continue
        regex = pattern(line)
        while at < len(actual) and not regex.fullmatch(actual[at]):
            at += 1
        assert at < len(actual), f"`{command}`: README line not in the output:\n  {line}\noutput:\n{output}"
        at += 1


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcripts")  # only what a user has: the samples come from a command
    (root / "notes.pt").write_text("my notes, not a checkpoint\n")
    guide = (
        REPO / "docs" / "guide" / "own-model.md"
    ).read_text()  # the model file the guide writes, as written
    (root / "my_models.py").write_text(re.search(r"```python\n(# my_models.py.*?)```", guide, flags=re.S)[1])
    return root


def test_the_checked_blocks_are_all_there():
    starts = [steps[0][0] for _, steps in blocks()]
    assert len(starts) == len(CHECKED), starts


def test_a_readme_line_matches_other_numbers_padded_to_their_width_and_nothing_else():
    row = pattern(" 0 T-shirt/top   82    0    1   10    0    1   12")
    assert row.fullmatch("0 T-shirt/top   83    0    1    8    0    1   13")  # another CPU's counts
    assert not row.fullmatch("0 T-shirt/top   83    0    1    8    0    1")  # a column missing
    assert not row.fullmatch("0 Trouser   83    0    1    8    0    1   13")  # another class
    assert not pattern("accuracy 79.00%, loss 0.5909").fullmatch("accuracy 79.00% loss 0.5909")
    assert pattern("wrote ... and ...").fullmatch("wrote a.png and b.json")


@pytest.mark.parametrize("index", range(len(CHECKED)))
def test_each_transcript_prints_what_the_readme_shows(workdir, index):
    line, steps = blocks()[index]
    env = {k: v for k, v in os.environ.items() if k != "TOCHA_DATA_DIR"}
    env["TOCHA_CACHE_DIR"] = str(workdir / "cache")
    for command, expected in steps:
        args = shlex.split(command)
        assert args[0] == "tocha", command
        done = subprocess.run([sys.executable, "-m", "tocha", *args[1:]], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        errors_expected = any(e.startswith("tocha: error:") for e in expected)
        assert (done.returncode != 0) == errors_expected, f"{line}: `{command}`\n{done.stderr}"
        check_output(expected, done.stdout + done.stderr, command)


MARKER = re.compile(r"<!-- (?:run by (?P<path>\S+)(?: [^>]*)?|not run[^:]*: (?P<reason>.+)) -->")


def test_every_command_block_is_run_or_says_why_not():
    """Every bash and console block of the README and the guide is run by this test (its first line
    is a checked command), or the line above it says which file runs it (a file that exists) or why
    it is not run as printed (a full dataset, a server, an example path...)."""
    unmarked = []
    for document in documents():
        text = document.read_text()
        for match in re.finditer(r"```(?:bash|console)\n(.*?)```", text, flags=re.S):
            if match.group(1).startswith(CHECKED):
                continue
            above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.fullmatch(above.strip())
            where = f"{document.relative_to(REPO)}:{text[: match.start()].count(chr(10)) + 1}"
            if marker is None or (marker["path"] and not (REPO / marker["path"].rstrip(",")).exists()):
                unmarked.append(where)
    assert unmarked == [], unmarked
