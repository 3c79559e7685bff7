"""uint8 images -> normalised float batches, on whatever device the batch is on.

The same function serves training, evaluation and `predict`, so a model always sees its inputs
scaled exactly as in training.
"""

from __future__ import annotations

import torch


def channel_stats(images: torch.Tensor, chunk: int = 10000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the 0..1 scale, in float64."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):  # chunks keep the float64 copy small
        x = images[start : start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = images.numel() / channels
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


class Normalize:
    """x_uint8 -> (x / 255 - mean) / std, folded into one multiply-add per element."""

    def __init__(self, mean: list[float], std: list[float], channels_last: bool = False) -> None:
        self.mean, self.std = list(mean), list(std)
        self.channels_last = channels_last  # NHWC batches: faster convolutions on GPUs
        std_t = torch.tensor(self.std, dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std_t)).view(1, -1, 1, 1)
        self._shift = (-torch.tensor(self.mean, dtype=torch.float32) / std_t).view(1, -1, 1, 1)

    def to(self, device: torch.device | str) -> Normalize:
        """Move the constants once, so no transfer happens per batch."""
        self._scale, self._shift = self._scale.to(device), self._shift.to(device)
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) uint8 -> float32; addcmul does the scale and shift in one pass.
        x = torch.addcmul(self._shift, images.float(), self._scale)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
