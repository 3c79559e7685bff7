"""Threads by idle cores: a busy process beside the run is seen and its core left to it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tocha.threads import choose_threads, idle_cores


def test_asked_for_or_omp_num_threads_wins(monkeypatch):
    assert choose_threads(3, 2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(None, 2) == 2  # torch's default already follows OMP_NUM_THREADS


@pytest.mark.skipif(
    not os.path.exists("/proc/stat") or (os.cpu_count() or 1) < 2, reason="needs Linux, 2+ cores"
)
def test_a_busy_process_takes_a_thread_away(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = os.cpu_count() or 1
    before = idle_cores(0.3)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        during = idle_cores(0.5)
        assert during < before - 0.5, (before, during)  # about one core less idle
        assert choose_threads(None, cores) <= max(1, round(before) - 1)
    finally:
        spinner.kill()
        spinner.wait()
