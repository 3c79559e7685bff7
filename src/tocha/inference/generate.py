"""Text from a next-token run (`tocha generate`, `model.generate`): the prompt's tokens, then one
token at a time, each drawn from the model's answer at the last position of the window it reads
(the last `context` tokens), until `length` tokens were added.

Drawing: the logits divided by `temperature` (0: always the most likely token), kept to the `top_k`
most likely where it is given, then one draw from their softmax by a generator seeded with `seed`,
so the same call writes the same text. Padding and the unknown token are never drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from tocha.data.text import PAD_ID, UNK_ID, TextRecord, tokenize
from tocha.errors import TochaError

MAX_LENGTH = 100_000


def check_generation(length: int, temperature: float, top_k: int | None) -> None:
    """The drawing's settings, refused in one line before the model is loaded."""
    if not 1 <= length <= MAX_LENGTH:
        raise TochaError(f"--length {length}: give 1 to {MAX_LENGTH:,} tokens")
    if not 0 <= temperature <= 100:
        raise TochaError(f"--temperature {temperature}: give 0 (the most likely token) to 100")
    if top_k is not None and top_k < 1:
        raise TochaError(f"--top-k {top_k}: give at least 1")


def prompt_ids(record: TextRecord, prompt: str) -> list[int]:
    """The prompt's token ids (unknown tokens as <unk>); an empty prompt starts at a newline where
    the vocabulary has one, else at its most frequent token."""
    index = {token: i for i, token in enumerate(record.vocab)}
    ids = [index.get(t, UNK_ID) for t in tokenize(prompt, record.tokens)]
    return ids or [index.get("\n", 2 if record.size > 2 else UNK_ID)]


def generated_tokens(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    record: TextRecord,
    prompt: str,
    length: int,
    temperature: float,
    top_k: int | None,
    seed: int,
    device: torch.device,
) -> Iterator[str]:
    """Each new token's text, as it is drawn (`logits_of`: ids (1, T) -> logits (1, T, V))."""
    check_generation(length, temperature, top_k)
    ids, context = prompt_ids(record, prompt), record.max_length
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(length):
        window = torch.tensor([ids[-context:]], dtype=torch.long, device=device)
        logits = logits_of(window)[0, -1].float().cpu()
        logits[[PAD_ID, UNK_ID]] = float("-inf")  # never written
        if temperature == 0:
            token = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k is not None and top_k < len(logits):
                logits[logits < logits.topk(top_k).values[-1]] = float("-inf")
            token = int(torch.multinomial(torch.softmax(logits, 0), 1, generator=generator))
        ids.append(token)
        yield record.vocab[token]


def joined(record: TextRecord | dict[str, Any], tokens: list[str]) -> str:
    """Tokens as text: characters as they are, words with a space between."""
    rule = record.tokens if isinstance(record, TextRecord) else record["tokens"]
    return "".join(tokens) if rule == "chars" else " ".join(tokens)
