"""Text given to a text run (`data.text`): lines of a file or of standard input, a CSV's text
column, or strings in Python, encoded with the run's own vocabulary and answered in order."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tocha.data.table import RawTable, read_table
from tocha.data.table_encoder import encode_table
from tocha.data.tables import is_table_path
from tocha.data.text import TextRecord, columns_of, tokenize
from tocha.data.text_set import read_text_file
from tocha.errors import TochaError
from tocha.tasks import Answers, Task

if TYPE_CHECKING:
    import torch

STDIN = "-"


def text_ids(
    record: dict[str, Any],
    texts: list[str],
    tables: list[RawTable | None] | None = None,
    length: int | None = None,
) -> tuple[torch.Tensor, int]:
    """The model's inputs for `texts` as the run encodes them, and how many texts were cut to its
    length (`length`: padded or cut to it, as an export's graph may need): (N, T) int64 ids, or
    where the run reads table columns beside its text (`data.text.columns_of`), (N, F + T) float32
    of each row's encoded columns (from `tables`, a CSV's, in the texts' order) and then its ids."""
    import torch

    if not texts:
        raise TochaError("no text to answer: give one text per line")
    ids, cut = TextRecord.from_dict(record).encode(texts, length=length)
    if length is not None:
        cut = sum(len(tokenize(t, record["tokens"])) > length for t in texts)
    beside = record.get("beside")
    if beside is None:
        return torch.from_numpy(ids), cut
    if not tables or any(t is None for t in tables):
        encoder = beside["encoder"]
        raise TochaError(
            "the run reads each text beside the columns "
            f"{', '.join([*encoder['numeric'], *encoder['categories']])}: give a CSV with them and the "
            f"text column {record.get('column')!r}, not lines of text"
        )
    features = np.concatenate([encode_table(beside, t)[0] for t in tables if t is not None])
    return torch.from_numpy(np.concatenate([features, ids.astype(np.float32)], axis=1)), cut


def texts_of(record: dict[str, Any], source: str | Path) -> tuple[list[str], str, RawTable | None]:
    """The texts a source holds, what names each, and the table they came from (a CSV's, else None):
    a CSV's rows (its recorded text column, numbered from 1), standard input's or a text file's lines
    (numbered from 1)."""
    if str(source) == STDIN:
        return sys.stdin.read().splitlines(), "line", None
    path = Path(source)
    if is_table_path(str(path)):
        column = record.get("column")
        table = read_table(path)
        if column is None or column not in table.columns:
            where = f"column {column!r}" if column else "a text column (it learnt from .txt files)"
            raise TochaError(
                f"{path}: the run reads {where}; this file's columns: {', '.join(table.columns)}"
            )
        return table.values[column], "row", table
    if not path.is_file():
        raise TochaError(f"{path}: no such file (give a text file, one text per line, a CSV, or - for stdin)")
    return read_text_file(path).splitlines(), "line", None


def sources_inputs(
    record: dict[str, Any], sources: list[str | Path], length: int | None = None
) -> tuple[torch.Tensor, list[str], str, int]:
    """The model's inputs for every text the sources hold (`texts_of`, `text_ids`), in order; the
    texts, what names each, and how many were cut."""
    found = [texts_of(record, source) for source in sources]
    texts = [t for part, _, _ in found for t in part]
    inputs, cut = text_ids(record, texts, [table for _, _, table in found], length)
    return inputs, texts, found[0][1], cut


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
    length = int(trained.image_shape[0]) - columns_of(record)  # the ids after any columns beside them
    inputs, texts, key, cut = sources_inputs(record, sources, length)
    answers = task.answers(run(inputs.numpy()), trained.classes, top_k)
    return answered_texts(task, trained.classes, answers, texts, key, cut, length)
