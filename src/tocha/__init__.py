"""tocha: train, compare and ship PyTorch image classifiers from one command.

The Python API (`tocha.train`, `load`, `evaluate`, `compare`, `export`, `resume`, `backbone`) lives
in `tocha.api` and is imported on first use, so `import tocha` stays instant (no torch until a
function is called).
"""

from typing import Any

from tocha.version import __version__

__all__ = ["__version__", "backbone", "compare", "evaluate", "export", "load", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name in ("backbone", "compare", "evaluate", "export", "load", "resume", "train"):
        from tocha import api

        return getattr(api, name)
    raise AttributeError(f"module 'tocha' has no attribute {name!r}")
