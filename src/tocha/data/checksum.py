"""Checksums: the md5 of a file's decompressed content (gzip headers do not matter), or of its bytes."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import IO

from tocha.errors import TochaError

_CHUNK = 1 << 20


def _md5_of(path: Path, opener: type[IO[bytes]] | object) -> str:
    digest = hashlib.md5()
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as e:  # truncated, unreadable, or not gzip at all
        raise TochaError(f"cannot read {path}: {e}") from e
    return digest.hexdigest()


def content_md5(path: Path) -> str:
    """md5 of the file's content, decompressing `.gz` files first."""
    return _md5_of(path, gzip.open if path.suffix == ".gz" else open)


def file_md5(path: Path) -> str:
    """md5 of the file's bytes as stored (for archives whose published md5 is of the archive)."""
    return _md5_of(path, open)
