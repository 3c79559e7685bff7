"""`tocha data info`: everything known about a dataset or a table, and where it is."""

from __future__ import annotations

from pathlib import Path

from tocha.data.load import candidate_dirs, locate
from tocha.data.paths import cache_dir
from tocha.data.registry import get_spec
from tocha.data.tables import is_table


def describe(name: str, data_dir: str | Path | None = None) -> str:
    """Everything `tocha data info` shows: classes, files and checksums, sources, where it is."""
    if is_table(name) and not Path(name).is_file():
        from tocha.data.tables import describe_table

        return describe_table(name, data_dir)
    spec = get_spec(name)
    found = locate(spec, data_dir)
    where = (found if isinstance(found, Path) else next(iter(found.values())).parent) if found else None
    lines = [
        f"{spec.name}: {spec.title}",
        f"images: {spec.sizes[0]} train, {spec.sizes[1]} test, shape (C, H, W) {spec.image_shape}",
        f"classes: {', '.join(f'{i} {c}' for i, c in enumerate(spec.classes))}",
        "files (md5 of " + ("decompressed content" if spec.files[0].content_md5 else "the file") + "):",
        *(f"  {f.name}  {f.md5}" for f in spec.files),
        f"status: {'found in ' + str(where) if where else 'not on this machine'}",
        "looked in: " + ", ".join(str(d) for d in candidate_dirs(spec, data_dir)),
    ]
    if spec.mirrors:
        lines.append("download mirrors: " + ", ".join(spec.mirrors))
        lines.append(f"downloads go to: {cache_dir() / 'datasets' / spec.name}")
    for label, text in (
        ("subset of", spec.sample_of),
        ("licence", spec.licence),
        ("cite", spec.citation),
        ("notes", spec.notes),
    ):
        if text:
            lines.append(f"{label}: {text}")
    return "\n".join(lines)
