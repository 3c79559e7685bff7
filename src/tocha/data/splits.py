"""The validation split: carved from the training split by a stated rule, the same rows every time.

Every choice a run makes (the epoch whose weights are kept, when to stop, when to lower the learning
rate, compare's ranking) is made on the validation rows, so the test split is scored once, on
what was chosen, and its number is not the one that chose it. The carve is seeded and, where the
task has classes, stratified: each class gives the same share (Keras once took the last rows
before shuffling and got one class), round(fraction x its count) rows, at least one and never all
(the rule image folders' test split follows). The rows follow from the labels, the fraction and
the seed, so
a resumed run, `evaluate` and `compare` find the same ones; the run's data digest covers them.
"""

from __future__ import annotations

import math

import numpy as np

from tocha.errors import TochaError


def carve(labels: np.ndarray, fraction: float, seed: int, stratified: bool, *, where: str,
          names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(training rows, validation rows), each in their original order: `fraction` of the rows drawn
    by a seeded permutation, per class when `stratified`: round(fraction x the class's count), at
    least one and never all, so every class is on both sides; a class of one row cannot be, and is
    refused by name."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)] if stratified else [
        np.arange(len(labels))]  # fmt: skip
    train, val = [], []
    for label, members in zip(np.unique(labels) if stratified else [None], groups, strict=True):
        if len(members) < 2:
            name = (names[int(label)] if names is not None else str(label)) if label is not None else ""
            what = f"class {name!r} has" if stratified else "there is"
            raise TochaError(f"{where}: {what} {len(members)} training example: a validation split needs two "
                             "or more, one on each side (give more data, or --val-fraction 0)")  # fmt: skip
        n_val = min(len(members) - 1, max(1, round(len(members) * fraction)))
        order = members[rng.permutation(len(members))]
        val.append(order[:n_val])
        train.append(order[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def limited_draw(limit: int, fraction: float, total: int, rounding: int, where: str) -> int:
    """How many training samples `--train-limit limit` draws to carve its validation from in
    proportion: limit / (1 - fraction), and `rounding` more (one per class of a stratified carve)
    for the carve's rounding; the training side is then cut to exactly `limit`. Refused where the
    split has too few."""
    needed = math.ceil(limit / (1 - fraction))
    if needed > total:
        most = max(1, int(total * (1 - fraction)) - rounding)
        raise TochaError(f"data.train_limit {limit}: with {fraction:.0%} of the samples carved for "
                         "validation, "
                         f"{limit} training samples need {needed}; {where} has {total}: give at most "
                         f"--train-limit {most}, or a smaller --val-fraction")  # fmt: skip
    return min(needed + rounding, total)


def carve_rule(fraction: float, seed: int, stratified: bool) -> str:
    """The rule in words, for the run's first line and records."""
    how = ", stratified by class" if stratified else ""
    return f"{fraction:.0%} of the training split{how}, seed {seed}"
