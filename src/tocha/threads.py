"""How many CPU threads a run uses: as asked (`--threads N`), or as many as there are idle cores.

PyTorch starts one intra-op thread per core, and its OpenMP threads spin while they wait. When
another process keeps a core busy, one of tocha's threads fights it for that core and every step
waits for the slower one: measured on 2 cores with one competing busy process, 2 threads ran an
epoch in 2.4 s and 1 thread in 1.2 s (BENCHMARKS.md, "Threads"). So by default tocha counts the
idle cores once, before training (a tenth of a second of /proc/stat), and uses that many threads,
at least one and at most PyTorch's own default. OMP_NUM_THREADS, when set, is obeyed instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

WINDOW = 0.1  # seconds over which the idle share of the CPUs is measured


def cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs since boot, or None where /proc/stat is not there."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait


def idle_cores(window: float = WINDOW) -> float | None:
    """How many cores' worth of CPU time went unused over the last `window` seconds."""
    before = cpu_times()
    if before is None:
        return None
    time.sleep(window)
    after = cpu_times()
    if after is None or after[1] == before[1]:
        return None
    return (os.cpu_count() or 1) * (after[0] - before[0]) / (after[1] - before[1])


def choose_threads(requested: int | None, default: int) -> int:
    """`requested`, or (with OMP_NUM_THREADS unset) the idle cores, between 1 and `default`."""
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return default
    free = idle_cores()
    return default if free is None else max(1, min(default, round(free)))
