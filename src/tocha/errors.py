"""The one exception type for a user's mistake: the CLI prints its message and exits non-zero."""


class TochaError(Exception):
    """A problem the user can fix (bad name, missing file, bad checksum...); no traceback shown."""


class ChecksumError(TochaError):
    """A file's content does not match its published checksum; the file is not used."""


class DownloadError(TochaError):
    """Every mirror failed for a file."""


class DivergedError(TochaError):
    """The loss became NaN or infinite; the run stopped without saving the broken weights."""

    def __init__(self, message: str, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step
