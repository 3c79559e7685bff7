"""From a config to everything a run needs, built once before the first epoch.

`build_setup` plans the config (every check before any data is read), reads the data once (rank 0
first), resolves the config once (`training.resolve`: frozen from then on), and builds the parts,
each with one job: the task, the data on the device (`DeviceData`), the model with what trains it
(`Learner`), and the runtime of one or many processes (`Runtime`). Nothing here trains:
`training.run` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import RunConfig
from tocha.data.tensorset import LoadedData
from tocha.models.architecture import Architecture
from tocha.models.code_trust import CodeTrust
from tocha.tasks import Task, task_class, task_of
from tocha.training.device_data import DeviceData
from tocha.training.learner import Learner
from tocha.training.plan import plan
from tocha.training.resolve import balance_lines, load_data, resolve
from tocha.training.runtime import Runtime


@dataclass
class Setup:
    """Everything a run needs, built from the config before the first epoch."""

    cfg: RunConfig  # resolved once, frozen: what the run records
    task: Task  # what the outputs mean
    data: DeviceData  # the splits on the device, normalisation, augmentation, batch order
    learner: Learner  # the model, its optimizer and phase, the weight average, the evaluator
    runtime: Runtime  # one process or many
    architecture: Architecture  # what builds the model (a user's: their class, function or object)

    @property
    def loaded(self) -> LoadedData:
        return self.data.loaded

    @property
    def model(self) -> nn.Module:
        """The weights being trained."""
        return self.learner.model

    @property
    def device(self) -> torch.device:
        return self.runtime.device


def build_setup(config: RunConfig, log: Callable[[str], None], runtime: Runtime | None = None,
                initialise: bool = True, given: Any = None, source_copy: Path | None = None,
                trust: CodeTrust = CodeTrust.RECORDED,
                checked: Architecture | None = None) -> Setup:  # fmt: skip
    """Check and resolve the config, load the data onto the device, build the model and what trains
    it. `runtime`: this process among torchrun's (started here when not given). `initialise`: load
    `init_from`'s weights (a resumed run loads its own instead). `given`: a module or function given
    in Python; `source_copy`: a resumed run's copy of its model file; `trust`: who chose a user's
    model's code (`models.code_trust`); `checked`: the model as an earlier plan checked it."""
    planned, source, checked = plan(config, initialise, given, source_copy, trust, checked)  # before any data
    runtime = runtime or Runtime.of_this_process()
    runtime.begin(planned.train.device, planned.train.threads, planned.train.collective_timeout)
    name, loaded = runtime.first_on_main(lambda: load_data(planned, log))  # read and decoded once
    cfg, architecture = resolve(planned, name, loaded, runtime.device, given, checked, source_copy)
    for line in balance_lines(loaded, planned.train, task_class(loaded.task).stratified):
        log(line)
    task = task_of(cfg, loaded.table)
    data = DeviceData.build(cfg, loaded, task, runtime)
    if cfg.model.flatten and loaded.table is None:
        c, h, w = loaded.image_shape
        log(f"{architecture.label} takes flat inputs: each {c}x{h}x{w} image is given as {c * h * w} values "
            "(as the notes' images.view(N, -1))")  # fmt: skip
    learner = Learner.build(cfg, data, task, runtime, source, log, architecture)
    return Setup(cfg, task, data, learner, runtime, architecture)
