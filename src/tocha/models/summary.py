"""`tocha summary`: each layer's output shape and parameter count, found by running the model once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerRow:
    name: str  # dotted path in the model, e.g. block_1.0
    kind: str  # class name, e.g. Conv2d
    output_shape: tuple[int, ...]
    parameters: int


def layer_rows(
    model: nn.Module, in_shape: tuple[int, ...], batch: int = 1, *, integer: bool = False
) -> list[LayerRow]:
    """Run a zero batch through `model` (int64 token ids where `integer`), recording every leaf
    module's output shape (a recurrent layer's: its outputs, not its last hidden state)."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # containers: their leaves are listed instead

        def record(mod: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
            out = out[0] if isinstance(out, tuple) else out  # nn.GRU: (outputs, hidden state)
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append(LayerRow(name, type(mod).__name__, tuple(out.shape), params))

        hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(batch, *in_shape, dtype=torch.long if integer else None))
    finally:
        for h in hooks:
            h.remove()
    return rows


def format_summary(rows: list[LayerRow], in_shape: tuple[int, ...], total: int) -> str:
    """A table: layer, type, output shape (B first), parameters; totals at the bottom."""
    shape = lambda s: "(" + ", ".join(["B", *map(str, s[1:])]) + ")"  # noqa: E731
    name_w = max(5, *(len(r.name) for r in rows))
    kind_w = max(4, *(len(r.kind) for r in rows))
    shape_w = max(12, *(len(shape(r.output_shape)) for r in rows))
    lines = [f"{'layer':<{name_w}}  {'type':<{kind_w}}  {'output shape':<{shape_w}}  {'params':>9}"]
    lines.append(f"{'input':<{name_w}}  {'':<{kind_w}}  {shape((1, *in_shape)):<{shape_w}}  {'':>9}")
    previous = (1, *in_shape)
    for r in rows:
        line = (
            f"{r.name:<{name_w}}  {r.kind:<{kind_w}}  {shape(r.output_shape):<{shape_w}}  {r.parameters:>9,}"
        )
        if r.kind == "Flatten" and len(previous) > 2:  # where the classifier's input size comes from
            line += f"  <- {' * '.join(map(str, previous[1:]))}"
        lines.append(line)
        previous = r.output_shape
    lines.append(f"total parameters: {total:,}")
    return "\n".join(lines)
