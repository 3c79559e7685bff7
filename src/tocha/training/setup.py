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
from tocha.tasks import Task
from tocha.training.device_data import DeviceData
from tocha.training.learner import Learner
from tocha.training.pieces import Pieces
from tocha.training.plan import Planned, plan
from tocha.training.resolve import balance_lines, load_data, resolve
from tocha.training.resolved import ResolvedRun
from tocha.training.runtime import Runtime


@dataclass
class Setup:
    """Everything a run needs, built from the config before the first epoch."""

    run: ResolvedRun  # the config resolved once and frozen (what the run records), its task and model
    data: DeviceData  # the splits on the device, normalisation, augmentation, batch order
    learner: Learner  # the model, its optimizer and phase, the weight average, the evaluator
    runtime: Runtime  # one process or many

    @property
    def cfg(self) -> RunConfig:
        return self.run.config

    @property
    def task(self) -> Task:
        """What the outputs mean."""
        return self.run.task

    @property
    def architecture(self) -> Architecture:
        """What builds the model (a user's: their class, function or object)."""
        return self.run.architecture

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


def build_setup(
    config: RunConfig | Planned,
    log: Callable[[str], None],
    runtime: Runtime | None = None,
    *,
    initialise: bool = True,
    given: Any = None,
    source_copy: Path | None = None,
    trust: CodeTrust = CodeTrust.RECORDED,
    data: Any = None,
    data_trust: CodeTrust = CodeTrust.RECORDED,
    pieces: Pieces | None = None,
) -> Setup:
    """Plan the config (a `Planned` one as it is: a comparison planned it), read the data, resolve
    the run once, load the data onto the device, build the model and what trains it. `runtime`:
    this process among torchrun's (started here when not given). `initialise`: load `init_from`'s
    weights (a resumed run loads its own instead). `given`: a module or function given in Python;
    `source_copy`: a resumed run's copy of its model file; `trust`: who chose a user's model's code
    (`models.code_trust`); `data`: data given in Python (`data.given`), read once; `data_trust`: who
    chose your data's code where `--data FILE.py:NAME` names it (`data.code`); `pieces`: a loss and
    an optimizer factory given in Python (`training.pieces`)."""
    planned = (
        config
        if isinstance(config, Planned)
        else plan(
            config,
            initialise=initialise,
            given=given,
            source_copy=source_copy,
            trust=trust,
            data_trust=data_trust,
            pieces=pieces,
        )  # fmt: skip
    )  # before any data
    data = data if data is not None else planned.data  # given in Python, or by the file --data names
    t = planned.config.train
    runtime = runtime or Runtime.of_this_process()
    runtime.begin(t.device, t.threads, t.collective_timeout)
    name, loaded = runtime.first_on_main(lambda: load_data(planned.config, log, data))  # read once
    run = resolve(planned, name, loaded, runtime.device, given=given, source_copy=source_copy, pieces=pieces)
    for line in balance_lines(loaded, t, run.task.stratified):
        log(line)
    data = DeviceData.build(run, loaded, runtime)
    if run.config.model.flatten and not loaded.rows:
        c, h, w = loaded.image_shape
        log(
            f"{run.architecture.label} takes flat inputs: each {c}x{h}x{w} image is given as {c * h * w} "
            "values (as the notes' images.view(N, -1))"
        )
    learner = Learner.build(run, data, runtime, planned.source, log=log, pretrained=planned.pretrained)
    return Setup(run, data, learner, runtime)
