"""Text given to a text run (`data.text`): lines of a file or of standard input, a CSV's text
column, or strings in Python, encoded with the run's own vocabulary and answered in order."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.data.table import read_table
from tocha.data.tables import is_table_path
from tocha.data.text import TextRecord, tokenize
from tocha.data.text_set import read_text_file
from tocha.errors import TochaError
from tocha.tasks import Answers, Task

if TYPE_CHECKING:
    import torch

STDIN = "-"


def text_ids(record: dict[str, Any], texts: list[str]) -> tuple[torch.Tensor, int]:
    """(N, T) int64 ids of `texts` as the run encodes them, and how many were cut to its length."""
    import torch

    if not texts:
        raise TochaError("no text to answer: give one text per line")
    ids, cut = TextRecord.from_dict(record).encode(texts)
    return torch.from_numpy(ids), cut


def texts_of(record: dict[str, Any], source: str | Path) -> tuple[list[str], str]:
    """The texts a source holds and what names each: a CSV's rows (its recorded text column,
    numbered from 1), standard input's or a text file's lines (numbered from 1)."""
    if str(source) == STDIN:
        return sys.stdin.read().splitlines(), "line"
    path = Path(source)
    if is_table_path(str(path)):
        column = record.get("column")
        table = read_table(path)
        if column is None or column not in table.columns:
            where = f"column {column!r}" if column else "a text column (it learnt from .txt files)"
            raise TochaError(
                f"{path}: the run reads {where}; this file's columns: {', '.join(table.columns)}"
            )
        return table.values[column], "row"
    if not path.is_file():
        raise TochaError(f"{path}: no such file (give a text file, one text per line, a CSV, or - for stdin)")
    return read_text_file(path).splitlines(), "line"


def answered_texts(
    task: Task, classes: list[str], answers: list[Any], texts: list[str], key: str, cut: int, max_length: int
) -> Answers:
    """Each text's answer under its number (from 1), with a note where texts were cut."""
    answer_key = task.answer_key(classes)
    items = [{key: i + 1, answer_key: a} for i, a in enumerate(answers)]
    notes = (
        [
            f"{cut} of {len(texts)} texts are longer than the {max_length} tokens the run reads: "
            "each was cut to its first ones"
        ]
        if cut
        else []
    )
    return Answers(task, classes, items, row_key=key, notes=notes)


def answer_export_texts(trained: Any, sources: list[str | Path], run: Any, task: Task, top_k: int) -> Answers:
    """An export of a text run asked with texts (`texts_of`): encoded by its recorded vocabulary at
    the length it was trained at (its graph may fix it: a recurrent layer's pt2 does), run by `run`."""
    record = trained.normalization["text"]
    found = [texts_of(record, source) for source in sources]
    texts, key = [t for part, _ in found for t in part], found[0][1]
    if not texts:
        raise TochaError("no text to answer: give one text per line")
    length = int(trained.image_shape[0])
    ids, _ = TextRecord.from_dict(record).encode(texts, length=length)
    cut = sum(len(tokenize(t, record["tokens"])) > length for t in texts)
    answers = task.answers(run(ids), trained.classes, top_k)
    return answered_texts(task, trained.classes, answers, texts, key, cut, length)
