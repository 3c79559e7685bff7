"""One writer per run folder and per report folder, with real processes: a second one is refused
with the holder's PID, and a lock dies with its process (kill -9 included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, run_main

from tocha.errors import TochaError
from tocha.locks import hold


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_a_held_lock_names_its_holder_and_dies_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from tocha.locks import hold\n"
        "with hold(Path(sys.argv[1]), 'testing'):\n"
        "    Path(sys.argv[1], 'held').touch(); time.sleep(60)"), str(tmp_path)])  # fmt: skip
    try:
        wait_for(tmp_path / "held")
        with pytest.raises(TochaError, match=f"in use by process {holder.pid} "), hold(tmp_path, "again"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold(tmp_path, "after the holder died"):  # the kernel released it with the process
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


def test_resume_is_refused_while_the_run_trains(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = ["train", "--data", "synthetic-linear", "--model", "linear", "--epochs", "100000",
               "--out", str(tmp_path), "--name", "r", "--no-progress"]  # fmt: skip
    trainer = subprocess.Popen([sys.executable, "-m", "tocha", *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(tmp_path / "r" / "checkpoint.pt")
        refused = run_main("train", "--resume", tmp_path / "r")
        assert refused.returncode == 2, refused.stderr
        assert f"in use by process {trainer.pid}" in refused.stderr
        assert not any(
            p.name.startswith(".tmp-") and p.stat().st_size == 0 for p in (tmp_path / "r").iterdir()
        )
    finally:
        trainer.send_signal(signal.SIGTERM)  # saves a resumable checkpoint and exits
        _, err = trainer.communicate(timeout=60)
    assert trainer.returncode != 0 and b"Continue with: tocha train --resume" in err


def test_two_comparisons_in_one_report_folder_are_refused(tmp_path):
    report = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = ["compare", "--data", "synthetic-linear", "--model", "linear", "--epochs", "100000",
               "--vary", "train.lr=0.01,0.001", "--seeds", "1", "--out", str(report)]  # fmt: skip
    first = subprocess.Popen([sys.executable, "-m", "tocha", *command], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(report / "comparison.yaml")
        second = run_main(*command)
        assert second.returncode == 2 and f"in use by process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
