"""The training split's inputs normalised once, before the first epoch, rather than at every step.

A step that normalises its own batch gathers its uint8 images, then converts and normalises them:
the conversion and the multiply-add cost more than the gather itself, a few percent of a small
model's step. Normalised once, a step only gathers, as a loop over tensors held in memory does.

The values are the same to the last bit: `Normalize` is the same elementwise operation whether it
meets a sample in a batch of random others or in a slice of the split (each value is computed on
its own, in the same way), and the split goes through it in slices of a step's batch size, so the
work is divided among threads as a step's batch is. The float copy is 4x the uint8 images, so it is
made only where it is a modest part of the device's memory; where it is not, or the inputs
are not plain numbers to scale (token ids, texts, images kept on disk), each step normalises its
own batch as before. Channels-last batches are kept as (H, W, C) per sample, so that a gathered
batch seen as (B, C, H, W) has the channels-last layout `Normalize` gives, without a copy. The
first step's batch, gathered, is checked against `Normalize`'s own (values, shape and layout): the
copy is dropped if they differ in anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from tocha.data.normalize import Normalize
from tocha.data.tensorset import TensorSet

PREPARED_BYTES = 1 << 30  # at most this much memory for the normalised copy (CIFAR-10's is 0.6 GiB)
FREE_SHARE = 4  # and at most a quarter of the memory the device has free


@dataclass
class PreparedInputs:
    """The split normalised beside its labels (a `TensorSet` the batch iterator takes as it is):
    images as `Normalize` gives them, other inputs (rows, signals) and channels-last images as
    (K, 1, 1) float32 rows, with how a batch of rows becomes what `Normalize` gives: one sample's
    shape as stored, (H, W, C) where batches are channels-last; None where a batch is as it is."""

    rows: TensorSet
    shape: tuple[int, ...] | None = None
    channels_last: bool = False

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """A gathered batch as `Normalize` gives it (at most a view: nothing copied)."""
        if self.shape is None:
            return batch
        x = batch.view(len(batch), *self.shape)
        return x.permute(0, 3, 1, 2) if self.channels_last else x  # NHWC memory seen as (B, C, H, W)


def prepare_inputs(train_set: TensorSet, normalize: Normalize, step_rows: int) -> PreparedInputs | None:
    """`train_set`'s inputs through `normalize`, `step_rows` samples at a time (a step's batch on
    this process); None where each step should normalise its own batch (see the module)."""
    images = train_set.images
    if not (isinstance(images, torch.Tensor) and scales_numbers(normalize) and len(images)):
        return None
    if not fits(4 * images[:1].numel() * len(images), images.device):
        return None
    parts = images.split(max(1, step_rows))
    normalised = torch.cat([normalize(part) for part in parts])
    # One channel: channels-last memory is the plain layout, and Normalize leaves it as it is.
    channels_last = normalised.ndim == 4 and normalize.channels_last and normalised.shape[1] > 1
    prepared = stored(normalised, train_set.labels, channels_last)
    first = prepared(prepared.rows.images[: len(parts[0])])
    return prepared if same_batch(first, normalize(parts[0])) else None


def stored(normalised: torch.Tensor, labels: torch.Tensor, channels_last: bool) -> PreparedInputs:
    """The normalised split kept as a `TensorSet` (whose inputs are 4-D): images as they are,
    channels-last images as (H, W, C) and other inputs as one row of values each."""
    if normalised.ndim == 4 and not channels_last:  # a gathered batch needs not even a view
        return PreparedInputs(TensorSet(normalised, labels))
    if channels_last:  # each sample's values in the order a channels-last batch holds them
        normalised = normalised.permute(0, 2, 3, 1).contiguous()
    rows = normalised.reshape(len(normalised), -1, 1, 1)  # contiguous: a view of the same values
    return PreparedInputs(TensorSet(rows, labels), tuple(normalised.shape[1:]), channels_last)


def same_batch(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    """Whether a prepared batch is the one `Normalize` gives: values, shape and memory layout (a
    layout of its own could lead a convolution to another kernel, and other last bits)."""
    return ours.shape == theirs.shape and ours.stride() == theirs.stride() and torch.equal(ours, theirs)


def scales_numbers(normalize: Normalize) -> bool:
    """Whether `normalize` only scales and shifts each value: not token ids (passed as they are)
    or texts (each batch cut to its longest)."""
    return not (normalize.integer or normalize.text is not None)


def fits(nbytes: int, device: torch.device) -> bool:
    """Whether a copy of `nbytes` stays within `PREPARED_BYTES` and a share of the device's memory."""
    return nbytes <= PREPARED_BYTES and nbytes * FREE_SHARE <= free_bytes(device)


def free_bytes(device: torch.device) -> int:
    """The memory `device` has for it: the GPU's free memory; for the CPU the machine's memory (a
    small machine's cap); where it cannot be told, anything within `PREPARED_BYTES`."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not told on this system
            pass
    return PREPARED_BYTES * FREE_SHARE
