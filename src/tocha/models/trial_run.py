"""A network run once on a batch of zeros before it trains or answers: whether it runs on the
shape it will be given, what it returns, and how many bytes each layer's output takes."""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import nn

from tocha.errors import TochaError, one_line
from tocha.models.meta import zeroed_copy

# A network up to this many parameters, on inputs up to this many values each (an ImageNet image),
# is tried on the CPU rather than on meta (see `trial_run`): two samples through it take milliseconds
# and little memory. Beyond either, the meta run, which takes none at any size.
CPU_CHECK_PARAMETERS, CPU_CHECK_INPUT = 5_000_000, 3 * 224 * 224


class DoesNotRun(TochaError):
    """The model cannot run on its input shape, or gives what the task cannot read."""


class ForwardFailed(DoesNotRun):
    """The model's forward raised on a batch of the shape it would be given."""


class Architecture(Protocol):
    """What a trial run reads of `models.architecture.Architecture`."""

    @property
    def label(self) -> str: ...

    @property
    def own(self) -> bool: ...

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    def zeros(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor: ...

    def build(self) -> nn.Module: ...


def trial_run(arch: Architecture, model: nn.Module, batch: int) -> tuple[Any, list[int]]:
    """`model` run on a zero batch: its output (on meta) and every leaf layer's output bytes for
    a batch of `batch`. A small network on meta runs as a copy on the CPU instead, its weights
    zeros, on two inputs (its output theirs, the sizes scaled to `batch`): the first forward on
    meta in a process loads torch's compiler (0.8 s of every command's start), two samples
    through a small network take milliseconds. A larger one runs on meta, where any batch costs
    nothing; a user's network whose forward reads values there, as itself (built) on the CPU."""
    device = next((p.device for p in model.parameters()), torch.device("meta"))
    if device.type == "meta" and small(arch, model):
        try:
            return run_on_cpu(arch, zeroed_copy(model), batch)
        except ForwardFailed:  # (a tensor held outside its parameters and buffers stays on meta)
            pass  # the meta run below says what fails, as for any network
    try:
        return run_on(arch, model, batch, device)
    except ForwardFailed:
        if device.type != "meta" or not arch.own:
            raise
    return run_on_cpu(arch, arch.build(), batch)  # a forward that reads values: run it for real


def small(arch: Architecture, model: nn.Module) -> bool:
    """Whether two samples through `model` cost little on the CPU (see `CPU_CHECK_PARAMETERS`)."""
    inputs = math.prod(arch.sample_shape)
    return inputs <= CPU_CHECK_INPUT and sum(p.numel() for p in model.parameters()) <= CPU_CHECK_PARAMETERS


def run_on_cpu(arch: Architecture, model: nn.Module, batch: int) -> tuple[Any, list[int]]:
    """`trial_run` of a network on the CPU, in eval mode, on two inputs; the sizes scaled to `batch`."""
    was_training = model.training  # (a network given in Python is the user's own object)
    try:
        out, sizes = run_on(arch, model.eval(), 2, torch.device("cpu"))
    finally:
        model.train(was_training)
    return out.to("meta") if isinstance(out, torch.Tensor) else out, [s * batch // 2 for s in sizes]


def run_on(arch: Architecture, model: nn.Module, batch: int, device: torch.device) -> tuple[Any, list[int]]:
    """`model`'s output for `batch` zero inputs on `device`, and each leaf layer's output bytes."""
    sizes: list[int] = []

    def record(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel() * out.element_size())

    hooks = [m.register_forward_hook(record) for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            return model(arch.zeros(batch, device)), sizes
    except Exception as e:
        raise ForwardFailed(
            f"{arch.label}'s forward failed on a batch of {(batch, *arch.sample_shape)}: {one_line(e)}"
        ) from e
    finally:
        for hook in hooks:
            hook.remove()
