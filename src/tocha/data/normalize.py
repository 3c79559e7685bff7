"""uint8 images -> normalised float batches, as a module that travels with the model.

The same `Normalize` serves training batches, evaluation, `predict` and the inference model, so a
model always sees its inputs scaled exactly as in training; its constants are buffers, so they
move with `.to(device)` and are part of an exported graph.
"""

from __future__ import annotations

import torch
from torch import nn

from tocha.data.text import columns_of


def rows(images: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows `start` to `stop` of a tensor, or of images kept on disk (`data.disk_images`), read."""
    if isinstance(images, torch.Tensor):
        return images[start:stop]
    return images.index_select(0, torch.arange(start, min(stop, len(images))))


STATS_VALUES = 10000 * 784  # values per float64 chunk (63 MB): 10,000 MNIST images, fewer larger ones


def channel_stats(
    images: torch.Tensor, chunk: int | None = None, scale: float = 255.0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of images (N, C, H, W) divided by `scale` (uint8 pixels on the 0..1
    scale; table rows, scale 1, in their own units), in float64, a chunk of at most 10,000 images
    and 63 MB of float64 at a time (so images read from disk are never all held at once)."""
    channels = images.shape[1]
    per_image = max(1, int(torch.tensor(images.shape[1:]).prod()))
    chunk = chunk or max(1, min(10000, STATS_VALUES // per_image))
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):  # chunks keep the float64 copy small
        x = rows(images, start, start + chunk).to(torch.float64) / scale
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.numel() / channels
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class Normalize(nn.Module):
    """x_uint8 -> (x / 255 - mean) / std, folded into one multiply-add per element (table rows:
    `input_scale` 1, so (x - mean) / std, and `rows`: given to the model as (N, F), the shape a
    table's rows have in the notes, not the (N, F, 1, 1) they are stored in). Your own data given in
    Python: `integer` inputs (token ids) pass as they are, and `shape` (C, L) gives a signal held as
    (N, C, L, 1) in the shape it was given."""

    def __init__(self, mean: list[float], std: list[float], channels_last: bool = False,
                 input_scale: float = 255.0, *, rows: bool = False, integer: bool = False,
                 shape: list[int] | None = None, text: dict | None = None) -> None:  # fmt: skip
        super().__init__()
        self.mean, self.std, self.input_scale, self.rows = list(mean), list(std), float(input_scale), rows
        self.integer, self.shape = integer, list(shape) if shape and len(shape) == 2 else None
        self.text = text  # a text run's tokens and vocabulary (`data.text.TextRecord`): how text becomes ids
        self.columns = columns_of(text)  # table features before the ids (text beside columns), else 0
        self.channels_last = channels_last  # NHWC batches: faster convolutions on GPUs and CPUs
        std_t = torch.tensor(self.std, dtype=torch.float32)
        # Not saved in state dicts: mean and std are stored in the config and rebuild these.
        self.register_buffer("scale", (1.0 / (self.input_scale * std_t)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer(
            "shift",
            (-torch.tensor(self.mean, dtype=torch.float32) / std_t).view(1, -1, 1, 1),
            persistent=False,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.columns:  # text beside table columns: the features scaled, the ids after them as they are
            f = self.columns
            features = torch.addcmul(self.shift[:, :f], images[:, :f].float(), self.scale[:, :f])
            return torch.cat([features, self.shortest(images[:, f:].float())], 1).flatten(1)
        # (B, C, H, W) uint8 -> float32; addcmul does the scale and shift in one pass.
        x = images if self.integer else torch.addcmul(self.shift, images.float(), self.scale)
        x = self.shortest(x)
        if self.shape is not None:
            return x.reshape(len(x), *self.shape)  # (N, C, L, 1) -> (N, C, L)
        if self.rows:
            return x.flatten(1)  # (N, F, 1, 1) -> (N, F)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def shortest(self, x: torch.Tensor) -> torch.Tensor:
        """A text run's batch of ids cut to its longest text: the padding after it would change no
        answer (`models.sequence_layers`), only cost every step its time. An export keeps its
        length free (and any other input is as it is)."""
        if self.text is None or torch.compiler.is_compiling():
            return x
        return x[:, : max(1, int((x != 0).flatten(1).sum(1).max()))]

    def to_dict(self) -> dict[str, object]:
        """What rebuilds it (a checkpoint's and an export's `normalization`)."""
        given = {"integer": True} if self.integer else {}
        given.update({"shape": self.shape} if self.shape is not None else {})
        given.update({"text": self.text} if self.text is not None else {})
        return {
            "mean": self.mean,
            "std": self.std,
            "input_scale": self.input_scale,
            "rows": self.rows,
            **given,
        }

    @classmethod
    def from_dict(cls, d: dict, channels_last: bool = False) -> Normalize:
        # Files written before these keys: 255 (an image run), and rows as (N, F, 1, 1), which the
        # table models of that time flattened themselves.
        given = {"integer": d.get("integer") is True, "shape": d.get("shape"), "text": d.get("text")}
        return cls(
            d["mean"],
            d["std"],
            channels_last,
            d.get("input_scale", 255.0),
            rows=d.get("rows") is True,
            **given,
        )

    def extra_repr(self) -> str:
        scale, layout = f"input_scale={self.input_scale:g}", f"channels_last={self.channels_last}"
        return f"mean={self.mean}, std={self.std}, {scale}, {layout}" + (", rows=True" if self.rows else "")
