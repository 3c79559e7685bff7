"""A corpus for next-token models (`--task next-token`): a `.txt` file, or a folder of them (joined
in name order, a newline between files), as one stream of tokens (`data.text`'s rules).

The splits are the stream's stretches, in order, never shuffled across it: the last `test_fraction`
is the test text, the `val_fraction` before it the validation text, the rest the training text,
whose tokens alone make the vocabulary. Each stretch is cut into windows of `context` tokens, one
after the other (each token is read once per epoch); a window's labels are the tokens one step on:
inputs `s[i : i + C]`, labels `s[i + 1 : i + C + 1]`. Training shuffles the windows, not the tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tocha.config import DataConfig
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.data.text import UNK_ID, TextRecord, tokenize
from tocha.data.text_set import read_text_file
from tocha.errors import TochaError

MAX_CORPUS_BYTES = 200 << 20


def corpus_text(path: Path) -> tuple[str, str]:
    """The corpus's text and, in words, where it came from."""
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise TochaError(f"{path}: no .txt files in this folder")
        return "\n".join(
            read_text_file(f, MAX_CORPUS_BYTES) for f in files
        ), f"{len(files)} .txt files in {path}"
    if not path.is_file():
        raise TochaError(f"{path}: no such file (a next-token corpus is a .txt file or a folder of them)")
    return read_text_file(path, MAX_CORPUS_BYTES), str(path)


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (N, C), labels (N, C)): consecutive windows of `context` tokens and the tokens that
    follow each of their positions."""
    count = (len(ids) - 1) // context
    take = np.arange(count)[:, None] * context + np.arange(context)[None, :]
    return ids[take], ids[take + 1]


def load_corpus(cfg: DataConfig, name: str, log: Callable[[str], None] = print) -> LoadedData:
    """The corpus `name` as windows of token ids, split in order, with the training text's vocabulary."""
    path = Path(name).expanduser()
    if cfg.train_limit is not None:
        raise TochaError(
            "--train-limit draws samples at random; a corpus is cut in order: give a shorter corpus"
        )
    text, source = corpus_text(path)
    tokens = tokenize(text, cfg.tokens)
    context = cfg.context
    n = len(tokens)
    n_test = int(n * cfg.test_fraction)
    n_val = int((n - n_test) * cfg.val_fraction)
    n_train = n - n_test - n_val
    stretches = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    short = [
        f"{split} {b - a:,}"
        for split, (a, b) in stretches.items()
        if (b - a or split != "val") and b - a <= context
    ]
    if short:
        raise TochaError(
            f"{path}: {n:,} {cfg.tokens} tokens give stretches ({', '.join(short)} tokens) no longer "
            f"than one context of {context} and the token after it: give a longer corpus or a "
            "smaller --context"
        )
    record = TextRecord.from_tokens(tokens[:n_train], cfg.tokens, cfg.max_vocab, context)
    index = {token: i for i, token in enumerate(record.vocab)}
    ids = np.array([index.get(t, UNK_ID) for t in tokens], dtype=np.int64)
    if unknown := int((ids[n_train:] == UNK_ID).sum()):
        log(
            f"{path.name}: {unknown:,} validation and test tokens are not in the training text's vocabulary: "
            "each reads as <unk>"
        )
    splits = {
        split: TensorSet(*map(torch.from_numpy, as_held(*windows(ids[a:b], context))))
        for split, (a, b) in stretches.items()
        if b - a > context
    }
    val_source = (
        f"the {cfg.val_fraction:.0%} of the text before the test stretch, in order" if "val" in splits else ""
    )
    return LoadedData(
        name=str(path),
        classes=list(record.vocab),
        train=splits["train"],
        test=splits["test"],
        source=(
            f"{source}: {n:,} tokens ({cfg.tokens}), the last {cfg.test_fraction:.0%} for testing; "
            f"a vocabulary of {record.size:,}, windows of {context}"
        ),
        details={"rows": True, "as_given": True, "text": {**record.to_dict(), "column": None}},
        task="next-token",
        val=splits.get("val"),
        val_source=val_source,
    )


def as_held(inputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows held as (N, C, 1, 1), as every run's inputs are; their labels (N, C)."""
    return np.ascontiguousarray(inputs[:, :, None, None]), np.ascontiguousarray(labels)
