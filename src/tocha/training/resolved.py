"""`ResolvedRun`: a run made concrete, the last of a config's three stages (as given: `RunConfig`;
planned: `training.plan.Planned`; resolved: this, made by `training.resolve`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tocha.config import RunConfig, freeze, get_value
from tocha.errors import TochaError
from tocha.models.architecture import Architecture
from tocha.tasks import Task

# What a resolved run has decided: each key, and the value it has until `resolve` decides it. The
# device is not among them: it is the machine's (`train.device: auto` is chosen again where a run
# resumes or is evaluated), and the runtime holds the one chosen here.
DECIDED = {
    "data.name": "auto",
    "data.task": "auto",
    "data.mean": None,
    "data.std": None,
    "model.name": "auto",
    "train.loss": "auto",
    "train.precision": "auto",
    "train.channels_last": None,
    "train.threads": None,
    "train.keep": "auto",
    "train.monitor": "auto",
    "train.weight_decay": None,
    "train.freeze": "auto",
    "train.schedule": "auto",
}


@dataclass(frozen=True)
class ResolvedRun:
    """A run made concrete: the last of a config's three stages (as given: `RunConfig`; planned:
    `training.plan.Planned`; resolved: this). Every automatic choice is made (`DECIDED`: no `auto`
    is left), the config is frozen, the task is built and the model checked on the data's shape.
    Everything after reads it and nothing derives it again; `config` is what the run folder and
    its checkpoints record."""

    config: RunConfig
    task: Task  # built once, with the run's loss, label smoothing and class weights
    architecture: Architecture  # the model, checked on the data's shape (what it built, kept)
    optimizer_factory: Any = None  # an optimizer factory given in Python (`training.pieces`), or None

    def __post_init__(self) -> None:
        undecided = [key for key, before in DECIDED.items() if get_value(self.config, key) == before]
        if undecided:
            raise TochaError(f"a resolved run leaves {', '.join(undecided)} undecided")
        freeze(self.config)
