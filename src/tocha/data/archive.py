"""An image folder packed as an archive (`.tar`, `.tar.gz`, `.tgz`: the JPEG copy of CIFAR-10, say)
given to `--data` as it is: extracted once into tocha's cache and read as the folder it holds.

The extraction uses Python's `data` filter (no absolute paths, no `..`, no links leading out, no
devices), into a temporary folder renamed into place only once complete, so a cut-short extraction
is never read; the cache entry is named by the archive's path, size and modification time, so a
changed archive is extracted again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from tocha.data.paths import cache_dir
from tocha.errors import TochaError, one_line

ARCHIVES = (".tar", ".tar.gz", ".tgz")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVES) and path.is_file()


def extracted(path: Path, log: Callable[[str], None]) -> Path:
    """The folder the archive holds, extracted into the cache once (its one top folder, if it has
    only that)."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "archives" / f"{path.name}-{key}"
    if not target.is_dir():
        log(f"{path}: extracting it once into {target}")
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            with tarfile.open(path) as archive:
                archive.extractall(temporary, filter="data")
            os.replace(temporary, target)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise TochaError(f"{path}: cannot extract it as an image folder: {one_line(e)}") from e
        finally:
            shutil.rmtree(temporary, ignore_errors=True)  # what a failure (or a faster process) left
    inside = [p for p in target.iterdir() if not p.name.startswith(".")]
    return (
        inside[0]
        if len(inside) == 1 and inside[0].is_dir() and inside[0].name not in ("train", "test")
        else target
    )
