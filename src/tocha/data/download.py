"""Download dataset files from their official mirrors, checked against published md5s.

Stdlib only (urllib); a file only ever appears under its final name after its checksum
passed, so a half-written or wrong file can never be mistaken for a good one.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tocha.data.checksum import content_md5
from tocha.data.progress import stage
from tocha.errors import ChecksumError, DownloadError, TochaError
from tocha.version import __version__

_CHUNK = 1 << 16


class _BadContent(Exception):
    """The mirror answered, but with the wrong bytes: retrying the same mirror will not help."""

    def __init__(self, reason: str, actual_md5: str | None = None) -> None:
        super().__init__(reason)
        self.actual_md5 = actual_md5


def _fetch(
    url: str,
    tmp: Path,
    md5: str | None,
    checksum: Callable[[Path], str],
    *,
    timeout: float,
    log: Callable[[str], None] | None,
) -> None:
    """Stream `url` into `tmp` and verify it; raise on any problem."""
    req = urllib.request.Request(url, headers={"User-Agent": f"tocha/{__version__}"})
    # The timeout applies to the connect and to every socket read, so a stalled server fails.
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with stage(f"downloading {url.rsplit('/', 1)[-1]}", expected, "B", log) as progress:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                progress.advance(len(chunk))
    # http.client returns EOF quietly when the server hangs up early, so check the length.
    if expected is not None and received < expected:
        raise ConnectionError(f"short body: got {received} of {expected} bytes")
    if md5 is not None:
        try:
            actual = checksum(tmp)
        except TochaError as e:  # e.g. an HTML error page served in place of a .gz
            raise _BadContent(f"unreadable content ({e})") from e
        if actual != md5:
            raise _BadContent(f"md5 {actual} != expected {md5}", actual)


def download_file(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: Path,
    md5: str | None,
    *,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 1.0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    checksum: Callable[[Path], str] = content_md5,
) -> Path:
    """Download `filename` from the first mirror that serves it intact; return its final path.

    (One function on purpose: the mirrors, retries and the first checksum mismatch are bookkeeping
    of one loop, and it reads top to bottom.)

    `checksum(path)` computes what `md5` is compared with: the decompressed content by default.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / filename
    failures: list[str] = []
    mismatch: tuple[str, str] | None = None  # (url, actual md5) of the first wrong file
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        for attempt in range(1, max(retries, 1) + 1):
            # Keep the real suffix last: content_md5 decides on `.gz` from the suffix.
            fd, name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part" + final.suffix, dir=dest_dir)
            os.close(fd)
            tmp = Path(name)
            try:
                _fetch(url, tmp, md5, checksum, timeout=timeout, log=(log or print) if progress else None)
                os.replace(tmp, final)
                return final
            except _BadContent as e:
                reason, give_up = str(e), True
                if e.actual_md5 is not None and mismatch is None:
                    mismatch = (url, e.actual_md5)
            except urllib.error.HTTPError as e:
                # A 404/403 will not change on retry; 5xx, 408 and 429 might.
                reason = f"HTTP {e.code} {e.reason}"
                give_up = 400 <= e.code < 500 and e.code not in (408, 429)
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets
                reason = f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
                give_up = False
            finally:
                tmp.unlink(missing_ok=True)
            last = give_up or attempt >= retries
            failures.append(f"  {url}: {reason}")
            if log is not None:
                then = "trying next mirror" if last else "retrying"
                log(f"{url}: attempt {attempt}/{retries} failed ({reason}); {then}")
            if last:
                break
            time.sleep(backoff * 2 ** (attempt - 1))
    hint = f"Download it by hand into {dest_dir} and run again."
    with contextlib.suppress(OSError):  # made for this download: an empty folder is not left behind
        dest_dir.rmdir()
    if mismatch is not None:
        url, actual = mismatch
        raise ChecksumError(
            f"{filename} from {url} has md5 {actual}, expected {md5}; the file was not kept. " + hint
        )
    tried = "\n".join(failures) or "  (no mirrors given)"
    raise DownloadError(f"could not download {filename}; tried:\n{tried}\n{hint}")
