"""The one exception type for a user's mistake: the CLI prints its message and exits non-zero."""


class TochaError(Exception):
    """A problem the user can fix (bad name, missing file, bad checksum...); no traceback shown."""


class ChecksumError(TochaError):
    """A file's content does not match its published checksum; the file is not used."""


class NotTochaCheckpoint(TochaError):
    """A file torch loads (weights only) that is not a tocha checkpoint: a plain state dict, say."""


class DownloadError(TochaError):
    """Every mirror failed for a file."""


class DivergedError(TochaError):
    """The loss became NaN or infinite; the run stopped without saving the broken weights."""

    def __init__(self, message: str, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step


class Interrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint.

    Not a TochaError: nothing is wrong, and the exit status is 128 + the signal number.
    """

    def __init__(self, what: str, signum: int, how_to_continue: str) -> None:
        super().__init__(f"{what}. {how_to_continue}")
        self.what, self.signum, self.how_to_continue = what, signum, how_to_continue

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def table_model_error(source: object) -> TochaError:
    """A model trained on a table, asked to take images."""
    return TochaError(
        f"{source} was trained on a table: it takes rows, not images "
        "(tocha predict RUN rows.csv, or the exported file's float32 rows)"
    )


def one_line(e: BaseException) -> str:
    """An exception as `Type: first line of its message` (a SyntaxError with its line)."""
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    text = str(e).strip().strip("'\"").splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first if len(first) <= 200 else first[:197] + '...'}".rstrip(": ")
