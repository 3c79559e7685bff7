"""Long work said while it runs: reading data can take tens of seconds (60,000 CIFAR-10 JPEGs
decode in about 24 s on 2 cores) and silence looks like a hang.

Work that is over within a second says nothing. Past a second, a terminal gets a tqdm bar (rate
and time left); anything else (a log file, a notebook's captured output, CI) gets one line when
the stage is seen to be slow and one when it ends, with its time and rate.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

QUIET_SECONDS = 1.0  # work shorter than this is not worth a word


class Stage:
    """One stage's progress: `advance(n)` as work is done; it decides alone whether to show any."""

    def __init__(self, what: str, total: int | None, unit: str, log: Callable[[str], None],
                 *, terminal: bool | None = None) -> None:  # fmt: skip
        self.what, self.total, self.unit, self.log = what, total, unit, log
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.started, self.done, self.said = time.perf_counter(), 0, False
        self.bar: Any = None

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.said and time.perf_counter() - self.started > QUIET_SECONDS:
            self.said = True
            if self.terminal:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, initial=self.done, desc=self.what, unit=self.unit,
                                unit_scale=self.unit == "B", file=sys.stderr, leave=False)  # fmt: skip
            else:
                of = f" of {self.amount(self.total)}" if self.total else ""
                self.log(f"{self.what}: {self.amount(self.done)}{of} so far, going on...")

    def amount(self, n: int | None) -> str:
        if self.unit == "B":
            return f"{(n or 0) / 1e6:,.1f} MB"
        return f"{n or 0:,} {self.unit}{'s' * (n != 1)}"

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.said:  # it was slow enough to be said: say how it ended
            seconds = time.perf_counter() - self.started
            rate = self.amount(round(self.done / seconds)) if seconds > 0 else "?"
            self.log(f"{self.what}: {self.amount(self.done)} in {seconds:.1f}s ({rate}/s)")


@contextlib.contextmanager
def stage(what: str, total: int | None, unit: str, log: Callable[[str], None] | None,
          *, terminal: bool | None = None) -> Iterator[Stage]:  # fmt: skip
    """A `Stage` for the work inside the block (silent when `log` is None)."""
    progress = Stage(what, total, unit, log or (lambda _line: None), terminal=terminal)
    try:
        yield progress
    finally:
        progress.finish()
