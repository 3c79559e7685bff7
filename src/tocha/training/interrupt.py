"""Stop training cleanly on SIGTERM or Ctrl-C (SIGINT).

The signal handler only records the request; the training loop looks at it before each step,
saves a resumable checkpoint there and exits with 128 + the signal number (143, 130), as a shell
reports a process ended by that signal. A second signal stops at once, without that checkpoint.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """While active (`with StopRequest() as stop:`), SIGTERM/SIGINT set `stop.signum`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.acted = False  # the loop stopped on it (saved a checkpoint, raised Interrupted)
        self.arrived = False  # a real signal, not a `request` from code
        self._previous: dict[int, object] = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def __call__(self) -> bool:
        """The check the training loop makes before each step."""
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def request(self, signum: int) -> None:
        """Ask the loop to stop at the next step, as if signal `signum` had arrived."""
        self.signum = signum

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:  # asked twice: the user means now
            self._restore()
            raise SystemExit(128 + signum)
        self.arrived = True
        self.request(signum)

    def __enter__(self) -> StopRequest:
        # Handlers can only be installed from the main thread; elsewhere signals keep their defaults.
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @property
    def late(self) -> bool:
        """A signal came too late for the loop to act on (as a finished run wrote its last files)."""
        return self.arrived and not self.acted

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        outside = {sig: handler for sig, handler in self._previous.items() if callable(handler)}
        self._restore()
        if self.late and exc_type is None and self.signum in outside and outside[self.signum] != self._handle:
            # Handed on to whoever handles it outside (`tocha compare` stops there), never dropped.
            # With no one outside, the finished run has written everything: its caller says so
            # and ends as a finished run does, rather than dying by the default handler.
            signal.raise_signal(self.signum)
