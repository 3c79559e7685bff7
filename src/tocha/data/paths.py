"""Where datasets are looked for and where decoded copies are cached."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TOCHA_DATA_DIR"
CACHE_DIR_ENV = "TOCHA_CACHE_DIR"


def cache_dir() -> Path:
    """The user cache folder: $TOCHA_CACHE_DIR, else $XDG_CACHE_HOME/tocha, else ~/.cache/tocha."""
    if env := os.environ.get(CACHE_DIR_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tocha"


def search_roots(data_dir: str | Path | None) -> list[Path]:
    """Folders that may hold `<name>/` dataset folders, most specific first."""
    roots = []
    if data_dir:
        roots.append(Path(data_dir))
    if env := os.environ.get(DATA_DIR_ENV):
        roots.extend(Path(p) for p in env.split(os.pathsep) if p)
    roots.append(cache_dir() / "datasets")
    return roots
