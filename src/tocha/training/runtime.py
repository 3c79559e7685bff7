"""`Runtime`: one process or many, as one object (as Lightning Fabric does it).

Every "if there are several processes" decision of a run is a method here: which device and
process group a rank takes, reading the data on rank 0 first, who names and writes the run folder,
who prints, the DDP wrapper, when the ranks agree to stop, adding up an epoch's sums, gathering the
test outputs and the random states, and leaving the process group. With one process every method
does the plain thing and no collective is ever called, so the epoch driver (`training.run`) reads as
single-process code. The collectives themselves are PyTorch's (`training.distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.runs import RunFolder
from tocha.threads import choose_threads
from tocha.training import distributed
from tocha.training.distributed import ONE_PROCESS, Ranks, ranks_from_env
from tocha.training.tally import EpochTally

Log = Callable[[str], None]
T = TypeVar("T")
TORCH_THREADS = torch.get_num_threads()  # PyTorch's own count, read before any run of this process sets one


def quiet(_line: str) -> None:
    pass


def prints_here() -> bool:
    """Whether this process speaks for the run: the only one, or rank 0 of torchrun's."""
    return os.environ.get("RANK", "0") == "0"


@dataclass
class Runtime:
    """This process's place among the run's processes, and its training device."""

    ranks: Ranks = ONE_PROCESS
    device: torch.device = torch.device("cpu")
    collective_timeout: float = 600.0  # seconds a collective waits for the other processes
    busy: tuple[int, int] | None = None  # (threads, usual) when busy cores made it use fewer threads

    @classmethod
    def of_this_process(cls) -> Runtime:
        """This process's place, as torchrun's environment says (one process without it); its
        device is chosen by `begin`."""
        return cls(ranks_from_env())

    def begin(self, device: str, threads: int | None, collective_timeout: float = 600.0) -> None:
        """Take the device named (`auto`, `cpu`, `cuda`...) with its CPU threads chosen, and, started
        by torchrun, join the process group (nccl on CUDA, one GPU per local rank; gloo on the CPU)."""
        chosen = resolve_device(device)
        if chosen.type == "cpu" or threads:
            count = choose_threads(threads, TORCH_THREADS)
            torch.set_num_threads(count)
            # Fewer than usual because other work was using the CPU: the done line says so.
            self.busy = (count, TORCH_THREADS) if not threads and count < TORCH_THREADS else None
        self.collective_timeout = collective_timeout
        self.device = distributed.start(self.ranks, chosen, collective_timeout) if self.active else chosen

    @property
    def active(self) -> bool:
        """Several processes."""
        return self.ranks.active

    @property
    def main(self) -> bool:
        """The process that writes files and prints: rank 0, or the only one."""
        return self.ranks.main

    @property
    def rank(self) -> int:
        return self.ranks.rank

    @property
    def world_size(self) -> int:
        return self.ranks.world_size

    def log(self, log: Log) -> Log:
        """`log` on the main process; the others print nothing but errors."""
        return log if self.main else quiet

    def first_on_main(self, work: Callable[[], T]) -> T:
        """`work()` (reading the data: downloads, decodes, fills the cache) on rank 0 first, then on
        the others, which read the cache."""
        return distributed.first_on_main(self.ranks, work) if self.active else work()

    def new_folder(self, out_dir: str | Path, name: str) -> RunFolder:
        """The run's new folder, made by rank 0 alone; every rank learns its name, rank 0 writes in it."""
        if not self.active:
            return RunFolder.create(out_dir, name)
        made = str(RunFolder.create(out_dir, name).path) if self.main else None
        return RunFolder(distributed.broadcast(made), writer=self.main)

    def folder(self, path: str | Path) -> RunFolder:
        """An existing run folder, written by the main process only."""
        return RunFolder(path, writer=self.main)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as the loop calls it: DDP-wrapped with several processes (same parameters,
        their gradients averaged over the ranks)."""
        return distributed.data_parallel(model, self.device) if self.active else model

    def sync_batchnorm(self, model: nn.Module, wanted: bool) -> nn.Module:
        """Batch norms over the global batch (`--sync-batchnorm`); nothing to synchronise alone."""
        return distributed.sync_batchnorm(model, self.device) if wanted and self.active else model

    def stop_policy(self, stop: Callable[[], bool], tally: EpochTally) -> Callable[[], bool]:
        """When the loop stops: alone, at its own signal or NaN loss, asked at every step; with
        several processes, only where every rank agrees (every few steps), so none leaves the
        others waiting in a collective."""
        if not self.active:
            return stop
        tally.local_divergence = False
        return distributed.AgreedStop(stop, lambda: tally.first_bad_step, self.device)

    def finish_epoch(self, tally: EpochTally, complete: bool = True) -> None:
        """The first bad step of any rank, and (`complete`) the epoch's sums of every rank added up:
        the collectives of an epoch. An epoch stopped part-way keeps each rank's own sums, which its
        checkpoint saves per rank, so the resumed run adds them up in the order the straight one
        does (float sums depend on their order)."""
        if self.active:
            tally.first_bad_step = distributed.first_bad_step_of_any(tally.first_bad_step)
            if complete:
                distributed.reduce_sums(tally.sums)

    def outputs(
        self, compute: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, width: int
    ) -> torch.Tensor:
        """`compute(inputs)` in full: with several processes each computes its own contiguous part
        (nothing counted twice) and every rank gets all the outputs (`width` per input)."""
        if not self.active:
            return compute(inputs)
        part = inputs[distributed.shard(len(inputs), self.ranks)]
        mine = compute(part) if len(part) else torch.empty(0, width, device=self.device)
        return distributed.gather_rows(mine, len(inputs))

    def gathered(self, own: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Every rank's `own` (its random state) in rank order; None with one process, whose state
        is saved as it is."""
        return distributed.gather(own) if self.active else None

    def mine(self, states: list[dict[str, Any]] | None, single: dict[str, Any]) -> dict[str, Any]:
        """This rank's part of what `gathered` saved (`single` when one process saved it)."""
        return states[self.rank] if states else single

    def carries_sums(self) -> bool:
        """Whether a resumed epoch's saved sums are this process's to carry on: they are every
        rank's together, so rank 0 alone carries them."""
        return self.main

    def failed(self, error: RuntimeError) -> TochaError | None:
        """A collective that failed, with several processes, as one line that says what happened (a
        silent process, or another that failed first and says why) instead of gloo's traceback;
        None for any other error."""
        if not (self.active and distributed.collective_error(error)):
            return None
        others = ", ".join(str(r) for r in range(self.world_size) if r != self.rank)
        if "timed out" in str(error).lower():
            return TochaError(
                f"rank {self.rank}: no answer from rank {others} within "
                f"{self.collective_timeout:g} s (--collective-timeout): a process stopped or "
                "hangs; its last checkpoint resumes the run"
            )
        return TochaError(
            f"rank {self.rank} stopped: another process of the run failed (its own message says why)"
        )

    def leave(self, finished: bool, drop_wrapper: Callable[[], None]) -> None:
        """This rank's last step on several processes: its DDP wrapper dropped (`drop_wrapper`), then
        the group left (the order matters: see `distributed.stop`). Nothing to do alone."""
        if self.active:
            drop_wrapper()
            distributed.stop(finished)
