"""Text as token ids: the tokenizer's rule, the vocabulary (built from the training texts only) and
the padded batch layout every text model takes.

Two rules, both small enough to say in one line:
- `chars` (the default): every Unicode character is a token, as a character-level RNN reads text;
- `words`: the text in lower case, cut into runs of letters, digits and underscores (`\\w+`) and
  single punctuation marks; spaces separate and are dropped ("Don't stop!" -> don ' t stop !).

Id 0 is padding, id 1 an unknown token (one the training texts never had), then the training
tokens from the most frequent (ties: in code-point order), at most `max_vocab` of them. A text is
its first `max_length` tokens, padded with 0 at the end: `(N, T)` int64 with T the longest text
kept; a model reads each text's length as its count of non-zero ids (padding is never inside a text).
The record (`TextRecord.to_dict`) travels in the run's normalisation, so predict, serve and export
encode new text exactly as training did.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tocha.errors import TochaError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TOKEN_RULES = ("chars", "words")
WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str, rule: str) -> list[str]:
    """`text` cut into tokens by `rule` (`chars` or `words`, see the module's docstring)."""
    if rule == "chars":
        return list(text)
    if rule == "words":
        return WORD.findall(text.lower())
    raise TochaError(f"unknown token rule {rule!r}: {', '.join(TOKEN_RULES)}")


@dataclass(frozen=True)
class TextRecord:
    """How text becomes ids: the rule, the vocabulary (ids in order, padding and unknown first) and
    the longest text kept, in tokens."""

    tokens: str
    vocab: tuple[str, ...]
    max_length: int

    @classmethod
    def fit(cls, texts: Iterable[str], tokens: str, max_vocab: int | None, max_length: int) -> TextRecord:
        """The vocabulary of `texts` (the training split's): its `max_vocab` most frequent tokens."""
        return cls.from_tokens(
            [t for text in texts for t in tokenize(text, tokens)], tokens, max_vocab, max_length
        )

    @classmethod
    def from_tokens(cls, tokens: list[str], rule: str, max_vocab: int | None, max_length: int) -> TextRecord:
        """The vocabulary of a stream of tokens already cut (a corpus's training text)."""
        counts = Counter(tokens)
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        kept = ranked[:max_vocab] if max_vocab is not None else ranked
        return cls(rule, (PAD, UNK, *kept), max_length)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextRecord:
        return cls(str(d["tokens"]), tuple(d["vocab"]), int(d["max_length"]))

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "vocab": list(self.vocab), "max_length": self.max_length}

    @property
    def size(self) -> int:
        """The number of ids (padding and unknown included): an embedding's rows."""
        return len(self.vocab)

    def encode(self, texts: Sequence[str], length: int | None = None) -> tuple[np.ndarray, int]:
        """(ids (N, T) int64, how many texts were cut): each text's first `max_length` tokens,
        unknown ones as 1, padded with 0 to `length` (default: the longest text kept)."""
        index = {token: i for i, token in enumerate(self.vocab)}
        rows = [[index.get(t, UNK_ID) for t in tokenize(text, self.tokens)] for text in texts]
        cut = sum(len(r) > self.max_length for r in rows)
        width = length if length is not None else max(1, min(self.max_length, max(map(len, rows), default=1)))
        ids = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            kept = row[:width]
            ids[i, : len(kept)] = kept
        return ids, cut

    def decode(self, ids: Iterable[int]) -> str:
        """The tokens of `ids` as text (words joined by spaces), padding left out."""
        tokens = [self.vocab[i] for i in ids if i != PAD_ID]
        return "".join(tokens) if self.tokens == "chars" else " ".join(tokens)

    def check_ids(self, ids: np.ndarray, where: str) -> None:
        """Every id is one of this vocabulary's (a model's embedding would fail on another)."""
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            bad = int(ids.max() if ids.max() >= self.size else ids.min())
            raise TochaError(f"{where}: token id {bad} is not in the vocabulary (ids 0 to {self.size - 1})")


def vocab_size_of(normalization: dict[str, Any]) -> int:
    """The vocabulary size a run's normalisation records (0: not a text run)."""
    text = normalization.get("text")
    return len(text["vocab"]) if isinstance(text, dict) and isinstance(text.get("vocab"), list) else 0


def columns_of(record: dict[str, Any] | None) -> int:
    """How many table features a text run reads beside its text (`beside`, `data.text_set`), 0 if none:
    its inputs are then (N, F + T) float32, the F features first, then the T token ids."""
    beside = (record or {}).get("beside")
    return len(beside["features"]) if isinstance(beside, dict) else 0


def text_problem(record: Any) -> str | None:
    """What is wrong with a run's text record (as a checkpoint or an export holds it), or None."""
    if not isinstance(record, dict):
        return "its text record is not a mapping"
    vocab = record.get("vocab")
    if record.get("tokens") not in TOKEN_RULES:
        return f"its text record's token rule {record.get('tokens')!r} is not one tocha has"
    if not (isinstance(vocab, list) and len(vocab) >= 2 and all(isinstance(t, str) for t in vocab)):
        return "its text record holds no vocabulary of tokens"
    if vocab[:2] != [PAD, UNK]:
        return "its text record's vocabulary does not begin with the padding and unknown tokens"
    length = record.get("max_length")
    if not (isinstance(length, int) and length >= 1):
        return "its text record's max_length is not a positive whole number"
    beside = record.get("beside")
    if beside is not None:  # the table columns read beside the text: a table's record of their own
        from tocha.data.table_record import beside_problem

        return beside_problem(beside)
    return None
