"""A live training setup to a `Checkpoint` and back: the one pair every checkpoint goes through.

A resumed run must be the run that would have happened, so a checkpoint keeps everything the next
step depends on: weights, optimizer and scheduler state, the weight average, the random
generators, and where in its epoch the run stopped (the epoch's order and partial sums).
"""

from __future__ import annotations

from typing import Any

import torch

from tocha.config import to_dict
from tocha.errors import TochaError
from tocha.runs.checkpoint import Checkpoint, TrainingState
from tocha.training.keeper import Keeper
from tocha.training.setup import Setup
from tocha.training.tally import EpochTally


def to_checkpoint(s: Setup, history: list[dict[str, float]], stopped: EpochTally | None, wall_seconds: float,
                  *, keeper: Keeper | None = None) -> Checkpoint:  # fmt: skip
    """The checkpoint of `s` after `history`'s epochs; `stopped`: an epoch stopped part-way;
    `keeper`: the choices made on the validation split (the kept weights, an early stop)."""
    data, opt = s.data, s.learner.opt
    own = {**random_state(s), "epoch_sums": stopped.sums if stopped is not None else None}
    rank_states = s.runtime.gathered(own)  # with several processes: a collective
    return Checkpoint(
        config=to_dict(s.cfg),
        classes=data.classes,
        image_shape=list(data.loaded.image_shape),
        normalization=data.normalize.to_dict(),
        weights=s.learner.evaluator.model.state_dict(),  # the average when there is one
        optimizer=opt.optimizer.state_dict(),
        epoch=len(history),
        finished=(len(history) == s.cfg.train.epochs or bool(keeper and keeper.stopped_early))
        and stopped is None,
        history=history,
        training=TrainingState(
            trained_weights=s.model.state_dict() if opt.averaged is not None else None,
            averaged=opt.averaged.state_dict() if opt.averaged is not None else None,
            scheduler=schedule.state_dict()
            if (schedule := opt.scheduler or opt.plateau) is not None
            else None,
            shuffle_generator=data.shuffle_generator.get_state(),
            augment_generator=data.augment_generator.get_state(),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if s.device.type == "cuda" else None,
            device_type=s.device.type,
            train_size=len(data.train_set),
            wall_seconds=wall_seconds,
            epoch=stopped.state_dict() if stopped is not None else None,
            world_size=s.runtime.world_size,
            rank_states=rank_states,
            data_digest=data.fingerprint,
        ),
        table=data.loaded.table,
        selection=keeper.state_dict() if keeper is not None else None,
    )


def random_state(s: Setup) -> dict[str, Any]:
    """What differs from process to process: the augmentation draws, torch's and CUDA's generators."""
    return {
        "augment_generator": s.data.augment_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if s.device.type == "cuda" else None,
    }


def restore(s: Setup, ckpt: Checkpoint, where: str) -> EpochTally | None:
    """Put the saved state into the freshly built setup `s`; returns the epoch stopped part-way.

    `where` names the run in messages."""
    state = ckpt.training
    if state is None:
        raise TochaError(f"{where}: written by an older tocha without the training state; cannot resume it")
    data, learner = s.data, s.learner
    found = (ckpt.classes, list(ckpt.image_shape), state.train_size)
    here = (data.classes, list(data.loaded.image_shape), len(data.train_set))
    if found != here:
        raise TochaError(
            f"{where} was trained on {s.cfg.data.name} with classes {found[0]}, images {found[1]} and "
            f"{found[2]} training images; the data found now has {here[0]}, {here[1]}, {here[2]}"
        )
    if state.data_digest is not None and state.data_digest != data.fingerprint:
        raise TochaError(
            f"{where} was trained on other data than {s.cfg.data.name} holds now: the same counts and "
            "classes, other contents (labels rewritten, images changed or swapped); a resumed run must "
            "continue on the very same data: start a new run"
        )
    # The optimizer saved is that of the epoch in progress (stopped part-way) or of the last one done.
    learner.enter_epoch(ckpt.epoch + 1 if state.epoch is not None else max(ckpt.epoch, 1))
    opt = learner.opt
    try:
        s.model.load_state_dict(state.trained_weights if state.trained_weights is not None else ckpt.weights)
        if opt.averaged is not None:
            opt.averaged.load_state_dict(state.averaged)
        opt.optimizer.load_state_dict(ckpt.optimizer)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first_line = str(e).strip().splitlines()[0]
        raise TochaError(
            f"{where}: the saved weights do not fit {s.architecture.label} ({first_line})"
        ) from e
    if (schedule := opt.scheduler or opt.plateau) is not None:
        schedule.load_state_dict(state.scheduler)
    data.shuffle_generator.set_state(state.shuffle_generator)
    own = s.runtime.mine(state.rank_states, vars(state))
    if own["augment_generator"] is not None:
        data.augment_generator.set_state(own["augment_generator"])
    elif data.augment is not None:  # format 2 drew augmentation from the shuffle's generator
        raise TochaError(f"{where}: written by an older tocha that cannot continue an augmented run exactly")
    torch.set_rng_state(own["torch_rng"])
    if own["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(own["cuda_rng"])
    if state.epoch is None:
        return None
    tally = EpochTally.from_state(s.task, state.epoch, s.device)
    if own.get("epoch_sums") is not None:  # each rank's own partial sums, as its straight run has them
        tally.sums = {k: v.to(s.device) for k, v in own["epoch_sums"].items()}
    elif not s.runtime.carries_sums():  # an older checkpoint: every rank's together, carried by rank 0
        for value in tally.sums.values():
            value.zero_()
    return tally
