"""The training loop and evaluation, nothing else.

Data is already on the device as uint8 tensors; a batch is a slice of a random permutation of
indices, converted and normalised on the device. Loss and correct counts are summed on the device
and read once per epoch, so the loop never waits for the device between steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from tocha.data.tensorset import TensorSet
from tocha.losses import LossFn


def batch_indices(
    n: int,
    batch_size: int,
    *,
    generator: torch.Generator | None,
    device: torch.device,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[torch.Tensor]:
    """Index batches for this process: a seeded permutation, this rank's share, in slices.

    With several processes every rank draws the same permutation (same generator seed) and takes
    every `world_size`-th index, so the ranks see disjoint parts of each epoch.
    """
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device if generator else "cpu")
    else:
        order = torch.arange(n)
    order = order[rank::world_size].to(device)
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@dataclass
class EpochResult:
    loss: float  # mean over samples
    accuracy: float  # correct / samples, over the whole epoch
    samples: int
    seconds: float


def train_one_epoch(
    model: nn.Module,
    data: TensorSet,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    on_step: Callable[[int], None] | None = None,
) -> EpochResult:
    """One pass over `data` in shuffled batches: forward, loss, zero_grad, backward, step."""
    device = data.images.device
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    start = time.perf_counter()
    for idx in batch_indices(len(data), batch_size, generator=generator, device=device):
        x = preprocess(data.images[idx])  # (B, C, H, W) float
        y = data.labels[idx]  # (B,)
        out = model(x)  # (B, classes)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Sums stay on the device: no .item() here, so no wait for the device each step.
        loss_sum += loss.detach() * len(idx)
        correct += (out.argmax(dim=1) == y).sum()
        if on_step is not None:
            on_step(len(idx))
    n = len(data)
    loss_value, correct_value = loss_sum.item(), correct.item()  # the one sync per epoch
    return EpochResult(loss_value / n, correct_value / n, n, time.perf_counter() - start)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 1000,
) -> torch.Tensor:
    """Model outputs (N, classes) for uint8 images (N, C, H, W), in eval mode, in large batches."""
    model.eval()
    outputs = [model(preprocess(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)
