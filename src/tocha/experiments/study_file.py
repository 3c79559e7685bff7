"""A search's `study.db` checked with SQLite itself before Optuna opens it.

Why: Optuna's `create_study(load_if_exists=True)` makes what it does not find. Given an empty file,
a SQLite file without its tables, or a database with no study named as tocha names it, it made a
new study there, and the search then rewrote `search.csv` without the trials already run. A file
that is not a study tocha made is refused instead, before anything in the folder is written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
from pathlib import Path

from tocha.errors import TochaError

SQLITE_HEADER = b"SQLite format 3\x00"
TABLES = ("studies", "study_directions", "study_user_attributes", "trials", "trial_params", "trial_values",
          "trial_intermediate_values", "version_info")  # fmt: skip  # what Optuna's storage reads


def check_study_file(path: Path, study_name: str) -> None:
    """Refuse `path` (one line: which file, what is wrong, that nothing was changed, what to do)
    unless it is an SQLite database holding Optuna's tables and the study `study_name` with the
    command that made it."""
    if problem := study_problem(path, study_name):
        raise TochaError(
            f"{path}: {problem}; nothing was changed (it, search.csv and the trials are as they "
            "were): put back a copy of it, or search into another folder"
        )


def study_problem(path: Path, study_name: str) -> str | None:
    """What makes `path` other than a study tocha made, or None."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        return "not a file"
    if st.st_size == 0:
        return "empty (0 bytes), not a search's study"
    with path.open("rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return "not an SQLite database (its first bytes are not SQLite's)"
    # Read-only, unless a transaction cut short left its journal: SQLite must then roll it back.
    journal = any(path.with_name(path.name + end).exists() for end in ("-journal", "-wal"))
    uri = f"{path.resolve().as_uri()}?mode={'rw' if journal else 'ro'}"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return database_problem(db, study_name)
    except sqlite3.Error as e:
        return f"not readable as an SQLite database ({e})"


def database_problem(db: sqlite3.Connection, study_name: str) -> str | None:
    """What the database lacks of a study tocha made, or None."""
    if (check := db.execute("PRAGMA quick_check").fetchone()) != ("ok",):
        return f"a damaged SQLite database ({check[0] if check else 'no answer'})"
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if missing := [t for t in TABLES if t not in tables]:
        return f"an SQLite database without Optuna's table(s) {', '.join(missing)}: not a search's study"
    studies = db.execute("SELECT study_id FROM studies WHERE study_name = ?", (study_name,)).fetchall()
    if len(studies) != 1:
        return f"holds no study named {study_name!r}: not a study tocha made"
    study = studies[0][0]
    command = db.execute(
        "SELECT value_json FROM study_user_attributes WHERE study_id = ? AND key = 'command'", (study,)
    ).fetchone()
    if command is None:  # a study made and stopped before its command was recorded has no trials
        trials = db.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?", (study,)).fetchone()[0]
        if trials:
            return f"its study has {trials} trial(s) but no record of the command that made it"
        return None
    try:
        recorded = json.loads(command[0])
    except (TypeError, ValueError):
        recorded = None
    return None if isinstance(recorded, dict) else "its study's record of the command that made it is damaged"
