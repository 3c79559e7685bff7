"""An epoch's running totals, kept on the device, and all it takes to stop between two steps.

The loop adds each step's loss and outputs here without reading anything back, so it never waits
for the device; the totals are read once, when the epoch ends. A step's additions wait, with a few
dozen others, to be made together (`settle`): the same additions in the same order, so the same
sums to the last bit, but run back to back, where each small operation costs a fraction of what it
costs between one step's backward and the next step's forward. A stopped run saves this state in
its checkpoint (the epoch's order, the steps done, the partial sums) and a resumed run goes on
from it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from tocha.tasks import Task

TALLY_FIELDS = ("order", "steps_done", "first_bad_step", "seconds", "grad_norms")  # the rest are sums
# Steps whose additions wait to be made together, and the bytes of outputs they may hold meanwhile
# (a language model's outputs are large: those are added at once, as they come).
SETTLE_STEPS, SETTLE_BYTES = 64, 8 << 20

Pending = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (loss, outputs, targets) of one step


@dataclass
class EpochTally:
    task: Task
    order: torch.Tensor  # this epoch's sample order (the same on every rank)
    sums: dict[str, torch.Tensor]  # the task's running sums, on the device
    first_bad_step: torch.Tensor  # the first step whose loss was NaN/inf; -1 while there is none
    steps_done: int = 0
    seconds: float = 0.0  # training time spent on this epoch so far
    local_divergence: bool = True  # False with several processes: they stop together, by agreement
    last_loss: torch.Tensor | None = field(default=None, repr=False)  # the last step's, on the device
    norms: torch.Tensor | None = None  # `--clip-grad-norm`: the gradient norms' (sum, max), on the device
    _seen: _DivergenceCheck | None = field(default=None, repr=False)
    _pending: list[Pending] = field(default_factory=list, repr=False)  # steps not yet in the sums
    _pending_bytes: int = field(default=0, repr=False)
    _nonfinite_seen: bool = field(default=False, repr=False)  # on the CPU: a NaN/inf loss, seen by `add`

    @classmethod
    def begin(cls, task: Task, order: torch.Tensor) -> EpochTally:
        device = order.device
        return cls(task, order, task.new_sums(device), torch.full((), -1, dtype=torch.long, device=device))

    def add(self, step: int, loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor,
            *, counted: bool = True) -> None:  # fmt: skip
        """Count one finished step: device-side additions only, no wait for the device. `counted`:
        False for a rank's stand-in sample (no share of a short last batch): the step, not its sums."""
        if not counted:
            self.steps_done = step
            return
        self._hold(loss, outputs, targets)
        self.last_loss = loss  # kept, not read: a tracker reads many at once (`--log tensorboard`)
        if loss.is_cpu:  # reading a CPU tensor is free: one scalar read, no tensor op
            if not math.isfinite(loss.item()) and not self._nonfinite_seen:
                self._nonfinite_seen = True  # what `diverged` answers, without reading the flag
                self.first_bad_step.fill_(step)
        else:  # remembered on the device, without waiting for it
            bad = ~torch.isfinite(loss) & (self.first_bad_step < 0)
            self.first_bad_step = torch.where(bad, step, self.first_bad_step)
        self.steps_done = step

    def _hold(self, loss: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Keep a step for `settle` (references only: nothing is copied), settling once enough wait."""
        self._pending.append((loss, outputs, targets))
        self._pending_bytes += outputs.nbytes
        if len(self._pending) >= SETTLE_STEPS or self._pending_bytes >= SETTLE_BYTES:
            self.settle()

    def settle(self) -> None:
        """Add the waiting steps to the sums, in their order: the task's own additions, as each step
        would have made them. Every reader of the sums calls it first (the loop, as it returns)."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if pending:
            self.task.add_steps(self.sums, pending)

    def add_norm(self, norm: torch.Tensor) -> None:
        """Count a step's gradient norm (before clipping): device-side, no wait."""
        norm = norm.detach().float().reshape(1)
        if self.norms is None:
            self.norms = torch.cat([norm, norm])
        else:
            self.norms = torch.cat([self.norms[:1] + norm, torch.maximum(self.norms[1:], norm)])

    def diverged(self) -> bool:
        """Whether a NaN/inf loss has been seen, as far as is known without waiting for the device."""
        if not self.local_divergence:
            return False
        if self._nonfinite_seen:
            return True
        if self.first_bad_step.is_cpu:  # `add` read every loss there: none was NaN/inf
            return False
        if self._seen is None:
            self._seen = _DivergenceCheck(self.first_bad_step.device)
        return self._seen.known_bad(self.first_bad_step)

    def first_nonfinite_step(self) -> int | None:
        """The step (from 1) whose loss first became NaN/inf, read from the device."""
        step = int(self.first_bad_step.item())
        return step if step > 0 else None

    def metrics(self, samples: int) -> dict[str, float]:
        """The epoch's train metrics (the one read of the sums), with the gradient norms' mean and
        max where they were clipped."""
        self.settle()
        metrics = self.task.summarize(self.sums, samples)
        if self.norms is not None:
            total, largest = self.norms.tolist()
            metrics |= {"grad_norm_mean": total / max(1, self.steps_done), "grad_norm_max": largest}
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of an epoch stopped part-way (the sums under their own names)."""
        self.settle()
        norms = {} if self.norms is None else {"grad_norms": self.norms}
        return {"order": self.order, "steps_done": self.steps_done, **self.sums,
                "first_bad_step": self.first_bad_step, "seconds": self.seconds, **norms}  # fmt: skip

    @classmethod
    def from_state(cls, task: Task, state: dict[str, Any], device: torch.device) -> EpochTally:
        on_device = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state.items()}
        # Every sum saved, those a task adds once it sees its outputs too (a regression's per-output columns).
        sums = {**task.new_sums(device), **{k: v for k, v in on_device.items() if k not in TALLY_FIELDS}}
        tally = cls(task, on_device["order"], sums, on_device["first_bad_step"],
                    on_device["steps_done"], on_device["seconds"])  # fmt: skip
        tally.norms = on_device.get("grad_norms")
        tally._nonfinite_seen = tally.first_bad_step.is_cpu and int(tally.first_bad_step) >= 0
        return tally


class _DivergenceCheck:
    """Reads the first-bad-step flag without stalling the device.

    On the CPU each loss is ordinary memory, read by the tally's `add` at every step for free,
    which remembers a NaN/inf itself: nothing is left to read here. On a CUDA GPU a
    non-blocking copy into pinned memory is started and read only once its event says it has
    landed, so a diverged run stops a few steps late instead of waiting on every step. Elsewhere
    (MPS) the flag is read when the epoch's sums are.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.host = torch.full((), -1, dtype=torch.long, pin_memory=device.type == "cuda")
        self.copied: Any = None  # the CUDA event of the copy in flight

    def known_bad(self, flag: torch.Tensor) -> bool:
        if self.device.type != "cuda":  # the CPU's is never asked (see `EpochTally.diverged`)
            return False
        if self.copied is not None and self.copied.query():
            if int(self.host) >= 0:
                return True
            self.copied = None
        if self.copied is None:
            self.host.copy_(flag, non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record()
        return False
