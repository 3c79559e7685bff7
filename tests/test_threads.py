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


@pytest.mark.skipif(
    not os.path.exists("/proc/stat") or (os.cpu_count() or 1) < 2, reason="needs Linux, 2+ cores"
)
def test_fewer_threads_are_said_and_a_comparison_chooses_once(tmp_path, monkeypatch):
    """With a core kept busy, `tocha train` uses fewer threads and its done line says so with the
    --threads that repeats its digits; `tocha compare` counts once and every cell records that count."""
    import yaml

    from tocha.threads import idle_cores

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores - 1)]
    try:
        if idle_cores(0.3) > cores - 0.5:
            pytest.skip("the busy processes did not show as busy cores")
        train = subprocess.run([sys.executable, "-m", "tocha", "train", "--data", "iris", "--epochs", "1",
                                "--out", str(tmp_path), "--name", "r"], env=env, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
        compare = subprocess.run([sys.executable, "-m", "tocha", "compare", "--data", "iris", "--epochs", "1",
                                  "--vary", "lr=0.01,0.1", "--seeds", "1", "--out", str(tmp_path / "c")],
                                 env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert train.returncode == 0, train.stderr
    assert f"of the usual {cores}, as other work was using the CPU" in train.stdout
    used = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["threads"]
    assert used < cores and f"--threads {used} repeats them on an idle machine" in train.stdout
    assert compare.returncode == 0, compare.stderr
    counted = [line for line in compare.stdout.splitlines() if "for every run, counted once" in line]
    assert len(counted) == 1
    recorded = {
        yaml.safe_load(p.read_text())["train"]["threads"] for p in (tmp_path / "c").glob("runs/*/config.yaml")
    }
    assert recorded == {int(counted[0].split()[0])}
