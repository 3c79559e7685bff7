"""`RunFolder`: the only code that writes or reads a run folder.

A run folder holds config.yaml, metrics.csv (rewritten after each epoch), checkpoint.pt (the same),
and once finished the figures its task draws (curves.png, and confusion_matrix.png for
classification or predictions.png for regression) and summary.json. Every write is atomic, so a
process killed at any moment leaves each file either whole or as it was. It draws nothing: the
figures come to it as PNG bytes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tocha.config import RunConfig, load_config, to_yaml
from tocha.config_fields import MAX_CONFIG_BYTES, brief
from tocha.errors import TochaError
from tocha.files import TMP_PREFIX, atomic_write, atomic_write_text, regular_file
from tocha.locks import hold
from tocha.models.user_names import SOURCE_COPY, model_label
from tocha.runs.checkpoint import CHECKPOINT_NAME, Checkpoint, read_checkpoint, save_checkpoint
from tocha.runs.records import RunSummary, metrics_csv, parse_metrics_csv


class RunFolder:
    CONFIG = "config.yaml"
    METRICS = "metrics.csv"
    CHECKPOINT = CHECKPOINT_NAME
    SUMMARY = "summary.json"
    DIVERGED = "diverged.json"  # written by compare for a seed whose loss became NaN/inf
    MODEL_SOURCE = SOURCE_COPY  # a copy of the user's model file, as it was when the run started
    MODEL_REPR = "model.txt"  # a model given as a Python object: what it printed as

    def __init__(self, path: str | Path, writer: bool = True) -> None:
        self.path = Path(path)
        # With several processes only rank 0 writes; on the others every write is skipped here.
        self.writer = writer

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @classmethod
    def create(cls, out_dir: str | Path, name: str) -> RunFolder:
        """A fresh folder `out_dir/name` (suffixed -2, -3... if taken); never reuses a run's folder."""
        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise TochaError(f"--out {out_dir}: a file, not a folder for runs")
        base = Path(out_dir) / name
        path, n = base, 1
        while True:
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")

    @staticmethod
    def default_name(dataset: str, model: str) -> str:
        safe = lambda text: "".join(c if c.isalnum() or c in "-_" else "_" for c in text)  # noqa: E731
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe(Path(dataset).name)}-{safe(model_label(model))}"

    def file(self, name: str) -> Path:
        return self.path / name

    def writing(self, what: str) -> contextlib.AbstractContextManager:
        """The folder's lock for the writer while it writes (`tocha.locks`); other ranks need none."""
        return hold(self.path, what) if self.writer else contextlib.nullcontext()

    # -- config.yaml
    def write_config(self, config: RunConfig) -> None:
        if not self.writer:
            return
        atomic_write_text(self.file(self.CONFIG), to_yaml(config))

    def read_config(self) -> RunConfig | None:
        path = self.file(self.CONFIG)
        return load_config(path) if path.is_file() else None

    # -- the user's model: its code (or, given as an object, its repr), for the record
    def write_model_record(self, source: bytes | None, described: str) -> None:
        """The model file's bytes as `model_source.py`, or, for an object with no file, `described`
        (its repr) as `model.txt`. Never imported by tocha: the record of what was trained."""
        if not self.writer:
            return
        if source is not None:
            atomic_write(self.file(self.MODEL_SOURCE), lambda f: f.write(source))
        else:
            atomic_write_text(self.file(self.MODEL_REPR), described + "\n")

    # -- metrics.csv
    def write_metrics(self, history: list[dict[str, float]], columns: list[str]) -> None:
        if not self.writer:
            return
        atomic_write_text(self.file(self.METRICS), metrics_csv(history, columns))

    def read_metrics(self) -> list[dict[str, float]]:
        try:
            return parse_metrics_csv(read_small(self.file(self.METRICS), "metrics file"))
        except (ValueError, TypeError) as e:  # a cut-short or edited row
            raise TochaError(
                f"{self.file(self.METRICS)} is damaged ({brief(str(e))}); run tocha train "
                f"--resume {self.path} to write it again"
            ) from None

    # -- checkpoint.pt
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).is_file()

    def write_checkpoint(self, ckpt: Checkpoint) -> None:
        if not self.writer:
            return
        save_checkpoint(self.file(self.CHECKPOINT), ckpt)

    def read_checkpoint(self) -> Checkpoint:
        return read_checkpoint(self.file(self.CHECKPOINT))

    # -- a finished run: figures and summary.json
    def write_figures(self, draw: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
        """The finished run's figures: PNG bytes by file name (the task's `run_figures`), drawn
        only where they are written; returned (none where not written)."""
        if not self.writer:
            return {}
        figures = draw()
        for name, data in figures.items():
            atomic_write(self.file(name), lambda f, data=data: f.write(data))
        return figures

    def write_summary(self, summary: RunSummary) -> None:
        if not self.writer:
            return
        atomic_write_text(self.file(self.SUMMARY), json.dumps(summary.to_dict(), indent=2) + "\n")

    def read_summary(self) -> RunSummary:
        try:
            text = read_small(self.file(self.SUMMARY), "run summary")
            return RunSummary.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:  # JSONDecodeError too
            raise TochaError(
                f"{self.file(self.SUMMARY)} is damaged ({brief(str(e))}); delete it and run "
                f"tocha train --resume {self.path} to write it again"
            ) from None

    def is_finished(self) -> bool:
        """Trained to the end (a readable summary and metrics written), or marked as diverged. A
        damaged record means not finished: `--resume` writes them again from the checkpoint (and a
        run that diverged diverges again)."""
        if self.read_diverged() is not None:
            return True
        if not (self.file(self.SUMMARY).is_file() and self.file(self.METRICS).is_file()):
            return False
        try:
            summary = self.read_summary()
            return len(self.read_metrics()) == summary.epochs
        except TochaError:
            return False

    # -- diverged.json (compare)
    def write_diverged(self, epoch: int, step: int, message: str) -> None:
        if not self.writer:
            return
        info = {"epoch": epoch, "step": step, "message": message}
        atomic_write_text(self.file(self.DIVERGED), json.dumps(info, indent=2) + "\n")

    def read_diverged(self) -> dict[str, Any] | None:
        """Where the run diverged, or None: none recorded, or a damaged record (the run is then
        trained again, and diverges again)."""
        path = self.file(self.DIVERGED)
        if not path.is_file():
            return None
        try:
            info = json.loads(read_small(path, "divergence record"))
            if isinstance(info, dict) and all(isinstance(info.get(k), int) for k in ("epoch", "step")):
                return info
        except (ValueError, TochaError, RecursionError):
            pass
        return None

    # -- housekeeping
    def remove_stale_temp_files(self) -> list[Path]:
        """Delete unfinished atomic writes left by a killed process; returns what was removed."""
        if not self.writer:
            return []
        stale = sorted(p for p in self.path.glob(TMP_PREFIX + "*") if p.is_file())
        for path in stale:
            path.unlink()
        return stale

    def eval_dir(self, dataset: str) -> Path:
        """`RUN/eval-<dataset>/`: where `tocha evaluate` writes, beside the checkpoint (a table file's
        name without its suffix: `eval-houses/` for houses.csv; your own data's `FILE.py:NAME`:
        `eval-FILE.py-NAME`, a name every file system takes)."""
        name = Path(dataset).name
        if Path(name).suffix.lower() in (".csv", ".tsv"):
            name = Path(name).stem
        return self.path / f"eval-{name.replace(':', '-')}"


def read_small(path: Path, what: str) -> str:
    """A record's text: a regular file of at most a megabyte (records are a few kB), else an error."""
    regular_file(path, what)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise TochaError(f"{path}: {path.stat().st_size:,} bytes is not a {what}")
    return path.read_text(encoding="utf-8", errors="replace")
