"""The checkpoint format: what `checkpoint.pt` holds, written atomically, loaded safely.

`Checkpoint` is the one description of the format; `to_dict` / `from_dict` are the only code that
knows the keys on disk. Loads use `weights_only=True`, so a checkpoint cannot run code.

With a weight average (EMA) on, `weights` are the averaged weights (what is evaluated) and
`training.trained_weights` the weights being trained (what a resumed run needs). `selection` holds
the choices made on the validation split: the kept epoch, its monitored value, its weights (with
`--keep best`), and an early stop; what evaluate, predict, export and serve use is `kept_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tocha.errors import NotTochaCheckpoint, TochaError
from tocha.files import atomic_torch_save
from tocha.runs.contents import contents_problem, weights_problem
from tocha.version import __version__

FORMAT = "tocha-checkpoint"
# 2: training_state and finished, for --resume. 3: separate shuffle and augmentation generators.
# 4: the validation split's choices (`selection`: the kept weights, an early stop).
FORMAT_VERSION = 4
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainingState:
    """Everything beyond the evaluated weights and the optimizer that the next step depends on."""

    trained_weights: dict[str, Any] | None  # set only with a weight average (then `weights` is the average)
    averaged: dict[str, Any] | None  # the AveragedModel's state
    scheduler: dict[str, Any] | None
    shuffle_generator: Any  # the batch order's generator (a uint8 tensor)
    augment_generator: Any | None  # None in format 2, which drew augmentation from the shuffle's
    torch_rng: Any
    cuda_rng: Any | None
    device_type: str
    train_size: int
    wall_seconds: float  # wall time of the run so far, over every resumed part
    epoch: dict[str, Any] | None  # an epoch stopped part-way (`EpochTally.state_dict`), or None
    world_size: int = 1  # processes the run trains on
    # With several processes, each rank's own random state (augmentation, torch, CUDA), in rank order;
    # the fields above hold rank 0's, and the partial sums of `epoch` are all ranks' together.
    rank_states: list[dict[str, Any]] | None = None
    data_digest: str | None = None  # `LoadedData.fingerprint` of the data trained on (None: older tochas)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.trained_weights,
            "averaged": self.averaged,
            "scheduler": self.scheduler,
            "generator": self.shuffle_generator,
            "augment_generator": self.augment_generator,
            "torch_rng": self.torch_rng,
            "cuda_rng": self.cuda_rng,
            "device_type": self.device_type,
            "train_size": self.train_size,
            "wall_seconds": self.wall_seconds,
            "epoch_progress": self.epoch,
            "world_size": self.world_size,
            "rank_states": self.rank_states,
            "data_digest": self.data_digest,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingState:
        return cls(
            trained_weights=d["model"],
            averaged=d["averaged"],
            scheduler=d["scheduler"],
            shuffle_generator=d["generator"],
            augment_generator=d.get("augment_generator"),
            torch_rng=d["torch_rng"],
            cuda_rng=d["cuda_rng"],
            device_type=d["device_type"],
            train_size=d["train_size"],
            wall_seconds=d["wall_seconds"],
            epoch=d["epoch_progress"],
            world_size=int(d.get("world_size", 1)),
            rank_states=d.get("rank_states"),
            data_digest=d.get("data_digest"),
        )


@dataclass
class Checkpoint:
    config: dict[str, Any]  # the resolved RunConfig, as a dict
    classes: list[str]
    image_shape: list[int]  # (C, H, W)
    normalization: dict[str, Any]  # `Normalize.to_dict`: {"mean": [...], "std": [...], "input_scale": ...}
    weights: dict[str, Any]  # the evaluated model's state_dict
    optimizer: dict[str, Any] | None
    epoch: int  # epochs finished
    finished: bool  # all planned epochs done
    history: list[dict[str, float]]
    training: TrainingState | None  # None in checkpoints written before --resume existed
    table: dict[str, Any] | None = None  # a table's encoding and target (`data.table_set.table_info`)
    selection: dict[str, Any] | None = None  # `training.keeper.Keeper.state_dict` (None before format 4)

    @property
    def kept_weights(self) -> dict[str, Any]:
        """The weights the run keeps: the best epoch's with `--keep best`, else the last evaluated."""
        kept = (self.selection or {}).get("weights")
        return kept if kept else self.weights

    @property
    def kept_epoch(self) -> int:
        """The epoch the kept weights are from."""
        selection = self.selection or {}
        return int(selection["epoch"]) if selection.get("weights") else self.epoch

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tocha_version": __version__,
            "config": self.config,
            "classes": self.classes,
            "image_shape": self.image_shape,
            "epoch": self.epoch,
            "finished": self.finished,
            "model": self.weights,
            "optimizer": self.optimizer,
            "history": self.history,
            "normalization": self.normalization,
            "training_state": self.training.to_dict() if self.training is not None else None,
            "table": self.table,
            "selection": self.selection,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | Path = "checkpoint") -> Checkpoint:
        try:
            state = d.get("training_state")
            ckpt = cls(
                config=d["config"],
                classes=list(d["classes"]),
                image_shape=list(d["image_shape"]),
                normalization=d["normalization"],
                weights=d["model"],
                optimizer=d.get("optimizer"),
                epoch=int(d.get("epoch", 0)),
                finished=bool(d.get("finished", False)),
                history=list(d.get("history", [])),
                training=TrainingState.from_dict(state) if state is not None else None,
                table=d.get("table"),
                selection=d.get("selection"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise TochaError(f"{where}: checkpoint is incomplete or inconsistent (missing {e})") from e
        problem = ckpt.problem()
        if problem:
            raise TochaError(f"{where}: checkpoint is damaged or was not written by tocha: {problem}")
        return ckpt

    def problem(self) -> str | None:
        """What makes the contents unusable (those of every trained file, `contents_problem`, and the
        stopped epoch's order being a permutation), or None: checked when a checkpoint is read."""
        import torch

        problem = contents_problem(
            self.classes, self.image_shape, self.normalization, self.weights, table=self.table
        )
        if problem:
            return problem
        if self.selection is not None and not isinstance(self.selection, dict):
            return "its record of the validation split's choices is not a mapping"
        kept = (self.selection or {}).get("weights")
        if kept is not None and (
            problem := weights_problem(kept) if isinstance(kept, dict) else "not a mapping"
        ):
            return f"its kept weights: {problem}"
        progress = self.training.epoch if self.training else None
        if progress is not None:
            order, n = progress.get("order"), self.training.train_size  # type: ignore[union-attr]
            if (
                not isinstance(order, torch.Tensor)
                or order.ndim != 1
                or len(order) != n
                or order.is_floating_point()
            ):
                return "the stopped epoch's order is not one index per training sample"
            if not torch.equal(order.sort().values.cpu(), torch.arange(n)):
                return "the stopped epoch's order is not a permutation of the training samples"
        return None


def checkpoint_path(run_or_checkpoint: str | Path) -> Path:
    """A run directory means its checkpoint.pt; a file is taken as given."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise TochaError(f"{run_or_checkpoint}: no checkpoint found (expected a run folder or a .pt file)")
    return path


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write atomically: the previous checkpoint stays intact until the new one is complete."""
    atomic_torch_save(ckpt.to_dict(), path)


def load_checkpoint(run_or_checkpoint: str | Path) -> dict[str, Any]:
    """The raw dict, loaded with weights_only=True (no code can run) and checked to be tocha's."""
    import torch

    path = checkpoint_path(run_or_checkpoint)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, random bytes, foreign pickles: all "not loadable" to the user
        raise TochaError(f"{path}: not a loadable checkpoint ({why_not_loadable(path, e)})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise NotTochaCheckpoint(f"{path}: not a tocha checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise TochaError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this tocha "
            f"understands ({FORMAT_VERSION}); upgrade tocha"
        )
    return ckpt


STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")  # where training scripts put theirs


def load_state_dict_file(path: Path) -> dict[str, Any]:
    """A plain PyTorch state dict file (`torch.save(model.state_dict(), path)`, or one under a
    `state_dict` / `model_state_dict` / `model` key), loaded with weights_only=True."""
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TochaError(f"{path}: not a loadable state dict ({why_not_loadable(path, e)})") from e
    if isinstance(raw, dict):
        raw = next((raw[k] for k in STATE_DICT_KEYS if isinstance(raw.get(k), dict)), raw)
    if (
        not isinstance(raw, dict)
        or not raw
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items())
    ):
        raise TochaError(
            f"{path}: neither a tocha checkpoint nor a state dict (a mapping of names to "
            "tensors, as torch.save(model.state_dict(), path) writes)"
        )
    bad = next(
        (k for k, v in raw.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None
    )
    if bad is not None:
        raise TochaError(f"{path}: weight {bad} holds NaN or infinite values")
    return dict(raw)


def why_not_loadable(path: Path, e: Exception) -> str:
    """What is wrong with a file torch cannot load, in words: torch's own messages are about its
    internals (miniz, the weights_only default)."""
    import zipfile

    with path.open("rb") as f:
        starts_as_zip = f.read(4) == b"PK\x03\x04"
    if path.stat().st_size == 0:
        return "the file is empty"
    if starts_as_zip and (not zipfile.is_zipfile(path) or "zip archive" in str(e)):
        return "its zip archive is cut short or damaged: the file was not written or copied completely"
    if not starts_as_zip:
        return "torch.save writes a zip archive and this file is not one: damaged, or not a checkpoint"
    if "Weights only load failed" in str(e):
        return (
            "it holds Python objects other than tensors and plain data, which tocha does not load "
            "(weights_only=True: loading a file never runs code)"
        )
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def read_checkpoint(run_or_checkpoint: str | Path) -> Checkpoint:
    """Load and interpret a checkpoint (a run folder or a .pt file)."""
    return Checkpoint.from_dict(load_checkpoint(run_or_checkpoint), run_or_checkpoint)
