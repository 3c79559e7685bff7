"""Run directories, atomic checkpoint saves and safe (weights_only) loads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tocha import __version__
from tocha.errors import TochaError
from tocha.files import atomic_torch_save

FORMAT = "tocha-checkpoint"
FORMAT_VERSION = 2  # 2: adds training_state and finished, for --resume
CHECKPOINT_NAME = "checkpoint.pt"


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """A fresh folder `out_dir/name` (suffixed -2, -3... if taken); never reuses a run's folder."""
    base = Path(out_dir) / name
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def default_run_name(dataset: str, model: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(dataset).name)
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{model}"


def save_checkpoint(path: Path, **content: Any) -> None:
    """Write a checkpoint atomically: the previous one stays intact until the new one is complete."""
    atomic_torch_save(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "tocha_version": __version__, **content}, path
    )


def checkpoint_path(run_or_checkpoint: str | Path) -> Path:
    """A run directory means its checkpoint.pt; a file is taken as given."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise TochaError(f"{run_or_checkpoint}: no checkpoint found (expected a run folder or a .pt file)")
    return path


def load_checkpoint(run_or_checkpoint: str | Path) -> dict[str, Any]:
    """Load with weights_only=True (no code can run), then check it is a tocha checkpoint."""
    import torch

    path = checkpoint_path(run_or_checkpoint)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, random bytes, foreign pickles: all "not loadable" to the user
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TochaError(f"{path}: not a loadable checkpoint ({first_line})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TochaError(f"{path}: not a tocha checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise TochaError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this tocha "
            f"understands ({FORMAT_VERSION}); upgrade tocha"
        )
    return ckpt
