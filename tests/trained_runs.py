"""Module-scoped trained runs for the tests that need a real checkpoint (trained once, reused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocha.config import RunConfig, set_value
from tocha.training import TrainResult, train


def train_quick(out: Path, **overrides: object) -> TrainResult:
    """Train with `section.key=value` overrides on a fresh cache folder, quietly."""
    config = RunConfig(out_dir=str(out))
    for key, value in overrides.items():
        set_value(config, key.replace("__", "."), value)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOCHA_CACHE_DIR", str(out / "cache"))
        mp.delenv("TOCHA_DATA_DIR", raising=False)
        return train(config, log=lambda _line: None, progress=False)
