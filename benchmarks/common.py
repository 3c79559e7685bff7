"""What every benchmark prints along with its figures: the machine, the versions, the date."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tocha.config import RunConfig
    from tocha.training import TrainResult

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def machine() -> dict[str, object]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def emit(record: dict[str, object]) -> None:
    """One JSON line on stdout, flushed (benchmarks are long; partial output is still useful)."""
    print(json.dumps(record), flush=True)
    sys.stdout.flush()


def local_config(settings: dict[str, object], data_dir: str | Path, out_dir: str | Path) -> RunConfig:
    """A run config from `section.key` settings, reading data from `data_dir` only (no download)."""
    from tocha.config import RunConfig, set_value

    config = RunConfig(out_dir=str(out_dir))
    for key, value in {**settings, "data.data_dir": str(data_dir), "data.download": False}.items():
        set_value(config, key, value)
    return config


def train_quietly(settings: dict[str, object], data_dir: str | Path, out_dir: str | Path) -> TrainResult:
    """Train `local_config(...)` with no output: the figures are taken from the returned history."""
    from tocha.training import train

    return train(local_config(settings, data_dir, out_dir), log=lambda _line: None, progress=False)
