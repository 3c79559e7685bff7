"""The registered tables: name -> file, target, task, checksum, licence; and the synthetic ones.

Pure data, importable without torch (`tocha data list` stays instant). Four small tables ship in
the package (`bundled/tables/`, with NOTICE.md); diamonds (2.5 MB) is looked for in the data
folders (`--data-dir DIR` or $TOCHA_DATA_DIR: `DIR/tables/diamonds.csv` or `DIR/diamonds.csv`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tocha.data.paths import search_roots
from tocha.errors import TochaError

TABLES_DIR = Path(__file__).resolve().parent / "bundled" / "tables"
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
CC_BY = "CC BY 4.0; distributed with scikit-learn"


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    file: str
    target: str
    task: str  # "regression" or "classification"
    rows: int
    md5: str
    licence: str
    shipped: bool = True  # in the package; otherwise looked for in the data folders


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("diabetes", "diabetes progression after one year from 10 baseline measurements",
                  "diabetes.csv", "progression", "regression", 442, "59a4fe4bfc5301b5954cb52cf764c576",
                  "Efron, Hastie, Johnstone, Tibshirani, Least Angle Regression (2004); "
                  "distributed with scikit-learn (BSD-3-Clause)"),
        TableSpec("wine", "three Italian wine cultivars from 13 chemical measurements", "wine.csv",
                  "cultivar", "classification", 178, "89f33930b4c1762ce50affe87d116e96",
                  f"UCI Wine (Forina et al.), {CC_BY}"),
        TableSpec("iris", "three iris species from 4 flower measurements (Fisher 1936)", "iris.csv",
                  "species", "classification", 150, "cb9423f6f97b06954118667763fb4779",
                  f"UCI Iris (R. A. Fisher), {CC_BY}"),
        TableSpec("breast-cancer", "malignant or benign from 30 cell-nucleus measurements",
                  "breast_cancer.csv", "diagnosis", "classification", 569,
                  "8b46c3452f6e35b9dfe93421215ace31",
                  f"UCI Breast Cancer Wisconsin (Wolberg et al.), {CC_BY}"),
        TableSpec("diamonds", "price of 53,940 diamonds from carat, cut, colour, clarity, size",
                  "diamonds.csv", "price", "regression", 53940, "d25dba43d0c7286e246a5e05e8e13605",
                  "ggplot2's diamonds (H. Wickham), MIT licence; via Rdatasets", shipped=False),
    )
}  # fmt: skip

# Generated, not read: the course notes' own data (X = randn(100, 10), y = randn(100, 1)), and the
# same shape with a known linear truth, y = X @ w + b + noise, whose weights a fit must recover.
SYNTHETIC = {
    "synthetic-regression": "the notes' X = randn(100, 10), y = randn(100, 1) (+ 100 test rows), seeded",
    "synthetic-linear": "1000 + 200 rows of 10 features, y = X @ w + 0.5 + noise (std 0.1), "
    "w = linspace(-1, 1, 10); seeded",
}
LINEAR_BIAS, LINEAR_NOISE = 0.5, 0.1


def is_table_path(name: str) -> bool:
    """A path tocha reads as a table (by its suffix)."""
    return name.lower().endswith(TABLE_SUFFIXES)


def is_table(name: str) -> bool:
    """A registered table, a synthetic one, a table file, or a prepared table's folder."""
    return name in TABLES or name in SYNTHETIC or is_table_path(name) or prepared_task(name) is not None


def prepared_task(name: str) -> str | None:
    """The task of a table prepared into the folder `name` (`tocha data prepare`), else None."""
    manifest = Path(name).expanduser() / "manifest.json"  # `data.prepared.MANIFEST` (no NumPy import here)
    try:
        recorded = json.loads(manifest.read_text()) if manifest.is_file() else None
    except (OSError, ValueError):
        return None  # not readable: the image route says what is wrong with it
    is_table_record = isinstance(recorded, dict) and recorded.get("source_kind") == "table"
    task = recorded.get("task") if is_table_record else None
    return task if isinstance(task, str) else None  # else the image route's manifest check says what is wrong


def declared_task(name: str, task: str, target: str | None) -> str | None:
    """The task known before a table is read: as asked, or a registered table's own (unless another
    target column is asked for); None when only the target's values can tell."""
    if task != "auto":
        return task
    if prepared := prepared_task(name):
        return prepared
    spec = TABLES.get(name)
    return spec.task if spec and not target else None


def table_file(spec: TableSpec, data_dir: str | Path | None) -> Path:
    """Where the table's file is: in the package, or in the first data folder that has it."""
    if spec.shipped:
        return TABLES_DIR / spec.file
    places = [
        place
        for root in search_roots(data_dir)
        for place in (root / "tables" / spec.file, root / spec.name / spec.file, root / spec.file)
    ]
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        looked = "\n  ".join(str(p) for p in places)
        raise TochaError(
            f"{spec.name}: {spec.file} is not shipped with tocha (2.5 MB) and was not found. Looked in:"
            f"\n  {looked}\nPass --data-dir DIR (a folder holding tables/{spec.file})"
        )
    return found


def describe_table(name: str, data_dir: str | Path | None = None) -> str:
    """What `tocha data info` shows for a table."""
    if name in SYNTHETIC:
        return f"{name}: {SYNTHETIC[name]}\ntask: regression, target y"
    spec = TABLES[name]
    try:
        where = str(table_file(spec, data_dir))
    except TochaError:
        where = "not on this machine (pass --data-dir)"
    return "\n".join([
        f"{spec.name}: {spec.title}", f"rows: {spec.rows}, target: {spec.target} ({spec.task})",
        f"file: {spec.file}  md5 {spec.md5}", f"status: {where}", f"licence: {spec.licence}",
    ])  # fmt: skip
