"""Sizes checked before allocation: what a model or a dataset will take, against what the machine has.

A model is built on PyTorch's `meta` device first (shapes, no storage), so a config asking for ten
million hidden units, or a checkpoint declaring them, is refused in milliseconds with the size it
would need, instead of swapping the machine to death or dying in `MemoryError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tocha.errors import TochaError

GIB = 1 << 30


def available_bytes() -> int:
    """Memory available to a new allocation: Linux's MemAvailable, else the physical total."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def check_fits(needed: int, what: str, have: int | None = None, advice: str = "") -> None:
    """Refuse, saying how much, what would not fit in the memory available now (`have`: a device's,
    default the machine's)."""
    have = available_bytes() if have is None else have
    if needed > have:
        raise TochaError(
            f"{what} needs about {needed / GIB:.1f} GiB of memory; {have / GIB:.1f} GiB is available{advice}"
        )


def device_available_bytes(device: object) -> int:
    """Free memory of a CUDA device (`torch.device`), or the machine's for any other."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    return available_bytes()
