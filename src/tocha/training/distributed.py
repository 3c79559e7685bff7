"""Many processes with PyTorch's own engine: `torchrun` starts them, `DistributedDataParallel` keeps
their weights equal. Everything a training run does differently on N processes is here.

Each process is a rank; torchrun tells it which through the environment (RANK, WORLD_SIZE,
LOCAL_RANK). The batch iterator gives each rank its share of every global batch (`data.batches`),
DDP averages the gradients, and this module adds the few collective steps around the loop: the
data read once, the run folder named by rank 0, the epoch's sums and the test outputs combined, and
a stop agreed by all ranks at the same step. A single process never calls any of it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from tocha.data.batches import share_of
from tocha.errors import TochaError

STOP_CHECK_EVERY = 8  # steps between two agreements on stopping (see BENCHMARKS.md for its cost)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


ONE_PROCESS = Ranks()


def ranks_from_env() -> Ranks:
    """This process's place, as torchrun's environment says (one process without it)."""
    try:
        return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip
    except ValueError as e:
        raise TochaError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers ({e})") from None


def start(ranks: Ranks, device: torch.device, timeout: float = 600.0) -> torch.device:
    """Join the process group (nccl on CUDA, one GPU per local rank; gloo on the CPU); the device
    this rank trains on. `timeout`: seconds a collective waits for the other ranks before it fails
    (torch's default is 30 minutes of silence)."""
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise TochaError(f"training on several processes works on CUDA GPUs and CPUs, not {device.type}")
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout)
        )
    return device


def first_on_main(ranks: Ranks, work: Callable[[], Any]) -> Any:
    """`work()` on rank 0 first (downloads, decodes, fills the cache), then on the others (which
    read the cache): the data is fetched and decoded once."""
    if ranks.main:
        result = work()
    dist.barrier()
    if not ranks.main:
        result = work()
    return result


def broadcast(value: Any) -> Any:
    """Rank 0's `value`, on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def reduce_sums(sums: dict[str, torch.Tensor]) -> None:
    """Add every rank's epoch sums in place."""
    for value in sums.values():
        dist.all_reduce(value, op=dist.ReduceOp.SUM)


def first_bad_step_of_any(first_bad_step: torch.Tensor) -> torch.Tensor:
    """The first step any rank's loss was NaN or infinite at (-1: none)."""
    never = torch.iinfo(torch.long).max
    bad = torch.where(first_bad_step > 0, first_bad_step, torch.full_like(first_bad_step, never))
    dist.all_reduce(bad, op=dist.ReduceOp.MIN)
    return torch.where(bad == never, torch.full_like(bad, -1), bad)


class AgreedStop:
    """A stop every rank takes at the same step: each asks its own signal flag, and every
    `every` calls (the first one included) they combine theirs, with any rank's NaN loss, in one
    small all-reduce. Between two agreements nobody stops alone, so the collectives stay in step."""

    def __init__(self, local: Callable[[], bool], bad_step: Callable[[], torch.Tensor], device: torch.device,
                 every: int = STOP_CHECK_EVERY) -> None:  # fmt: skip
        self.local, self.bad_step, self.every = local, bad_step, every
        self.flags = torch.zeros(2, device=device)
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if (self.calls - 1) % self.every:
            return False
        self.flags[0] = float(self.local())
        self.flags[1] = (self.bad_step() > 0).float()
        dist.all_reduce(self.flags, op=dist.ReduceOp.MAX)
        return bool(self.flags.max() > 0)


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model wrapped by DDP: the same parameters, their gradients averaged over the ranks."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Batch norms whose statistics cover the global batch instead of each rank's share."""
    if device.type != "cuda":
        raise TochaError("--sync-batchnorm needs CUDA GPUs (nccl): PyTorch's SyncBatchNorm does not run on "
                         "the CPU; on CPUs each rank normalises with its own share's statistics")  # fmt: skip
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def shard(n: int, ranks: Ranks) -> slice:
    """This rank's contiguous part of n items: sizes differ by at most one, nothing counted twice."""
    return share_of(n, ranks.rank, ranks.world_size)


def gather_rows(part: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's rows of a sharded result (see `shard`), concatenated in rank order: all n."""
    world = dist.get_world_size()
    longest = -(-n // world)
    padded = torch.zeros((longest, *part.shape[1:]), dtype=part.dtype, device=part.device)
    padded[: len(part)] = part
    pieces = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(pieces, padded)
    parts = [shard(n, Ranks(r, world)) for r in range(world)]
    return torch.cat([piece[: part.stop - part.start] for piece, part in zip(pieces, parts, strict=True)])


def collective_error(error: RuntimeError) -> bool:
    """Whether `error` is a collective's failure (gloo's or nccl's: a timeout, a closed peer)."""
    text = str(error).lower()
    return isinstance(error, dist.DistError) or any(
        word in text
        for word in ("gloo", "nccl", "connection closed", "timed out waiting", "connection reset")
    )


def stop(finished: bool) -> None:
    """Leave the process group, after the caller has dropped its DDP wrapper (see
    `training.run.leave_group`). A rank that finished waits for the others to finish too; after an
    error they may never arrive, so a failing rank leaves at once.

    Why the order matters: DDP's reducer keeps the group alive, so whatever frees the reducer
    last also destroys gloo's worker threads. Left to the interpreter's exit, that can happen on
    one of those very threads, and the process aborts (`terminate called without an active
    exception`: 3 runs in 40 beside two busy processes on two cores, benchmarks/teardown.py).
    Collected here, on the main thread, while the group is still registered, the group's last
    reference goes with `destroy_process_group`."""
    if not dist.is_initialized():
        return
    gc.collect()  # the reducer, if a reference cycle still held it
    if finished:
        dist.barrier()
    dist.destroy_process_group()
