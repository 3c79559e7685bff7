"""The checks before `tocha train --resume RUN`: is there a run, a checkpoint, something left to do,
and is it asked to continue exactly as it was configured? Every reason not to is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tocha.config import RunConfig, config_from_dict, config_keys, get_value, set_value
from tocha.data.code import is_data_code
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.models.user_names import is_own
from tocha.runs import Checkpoint, RunFolder
from tocha.training.distributed import ONE_PROCESS, Ranks

# Options that say where to find things, not what to train: a resumed run may change them.
WHERE_NOT_WHAT = {"data.data_dir", "data.download", "train.collective_timeout", "model.file", "data.file"}


def open_resumable(
    folder: RunFolder, overrides: dict[str, Any], ranks: Ranks = ONE_PROCESS
) -> tuple[Checkpoint, RunConfig]:
    """The run folder's checkpoint and the config to go on with; every reason not to, as an error.
    `ranks`: the processes that would go on with it (their number must be the run's)."""
    if not folder.path.is_dir():
        raise TochaError(f"{folder.path}: no such run folder; nothing to resume")
    if not folder.has_checkpoint():
        raise TochaError(
            f"{folder.path}: no {folder.CHECKPOINT}: the run stopped before its first checkpoint, so there "
            f"is nothing to resume; start it again with: tocha train --config {folder.file(folder.CONFIG)}"
        )
    ckpt = folder.read_checkpoint()
    if ckpt.training is None:
        raise TochaError(
            f"{folder.file(folder.CHECKPOINT)}: written by an older tocha without the training state; "
            "cannot resume it"
        )
    config = config_from_dict(ckpt.config, str(folder.file(folder.CHECKPOINT)))
    check_matches_config_file(folder, config)
    apply_overrides(folder, config, overrides)
    done, stopped_mid_epoch = ckpt.epoch, ckpt.training.epoch is not None
    epochs = overrides.get("train.epochs", config.train.epochs)
    if epochs != config.train.epochs:
        if config.train.schedule != "constant":
            raise TochaError(
                f"--epochs {epochs}: the {config.train.schedule} schedule of {folder.path} was planned for "
                f"{config.train.epochs} epochs and a resumed run keeps it; start a new run instead"
            )
        if epochs < done + stopped_mid_epoch:
            raise TochaError(f"--epochs {epochs}: {folder.path} has already trained {done} epochs")
        config.train.epochs = epochs
    early = (ckpt.selection or {}).get("stopped_early")
    if early and folder.is_finished():
        raise TochaError(
            f"{folder.path} stopped early after epoch {early} (--early-stop): it is finished; "
            "nothing to resume"
        )
    if early and epochs != config.train.epochs:
        raise TochaError(
            f"--epochs {epochs}: {folder.path} stopped early after epoch {early}; start a new run"
        )
    if done >= config.train.epochs and not stopped_mid_epoch and folder.is_finished():
        more = " (to train it longer: --resume RUN --epochs N)" if config.train.schedule == "constant" else ""
        raise TochaError(f"{folder.path} already finished its {done} epochs; nothing to resume{more}")
    check_world_size(folder, ckpt.training.world_size, ranks.world_size)
    saved_type, here = ckpt.training.device_type, resolve_device(config.train.device)
    if here.type != saved_type:  # a CUDA generator's state cannot continue on the CPU, nor back
        raise TochaError(
            f"{folder.path} was training on {saved_type}; device {config.train.device} is {here.type} "
            f"here, and its random state cannot continue on another kind of device"
        )
    return ckpt, config


def check_world_size(folder: RunFolder, saved: int, here: int) -> None:
    """A run continues exactly only on as many processes as it trained on: the number decides which
    samples each process draws, and each process's random state is saved for it."""
    if saved != here:
        how = f"tocha train --resume {folder.path} --nproc {saved}" if saved > 1 else "one process"
        raise TochaError(
            f"{folder.path} was training on {saved} process(es), not {here}; it continues "
            f"exactly only on as many ({how})"
        )


def apply_overrides(folder: RunFolder, config: RunConfig, overrides: dict[str, Any]) -> None:
    """Flags given again with --resume: where the data is may change; what is trained may not."""
    for key, value in overrides.items():
        if key in WHERE_NOT_WHAT:
            set_value(config, key, value)
            if key == "model.file":  # named now: trusted as it is, its SHA-256 taken afresh
                check_own_model(folder, config)
                config.model.file, config.model.file_sha256 = str(Path(value).expanduser().resolve()), None
                config.model.sources = config.model.signature = None  # recorded afresh, named now
            if (
                key == "data.file"
            ):  # your data's code, named now: recorded afresh, its data's fingerprint checked
                if not is_data_code(config.data.name):
                    raise TochaError(
                        f"--data-file: {folder.path} trained on {config.data.name}, which is no code"
                    )
                config.data.file, config.data.file_sha256 = str(Path(value).expanduser().resolve()), None
                config.data.sources = config.data.signature = None
        elif key != "train.epochs" and get_value(config, key) != value:
            raise TochaError(
                f"--resume continues {folder.path} exactly as it was configured: {key} is "
                f"{get_value(config, key)!r} there, not {value!r} (start a new run to change it)"
            )


def check_own_model(folder: RunFolder, config: RunConfig) -> None:
    if not is_own(config.model.name):
        raise TochaError(
            f"--model-file: {folder.path} trained {config.model.name}, one of tocha's own "
            "models; it needs no file"
        )


def resumable(run_dir: Path, world_size: int = 1) -> bool:
    """True for a run folder whose checkpoint can be resumed (stopped early, state saved) on
    `world_size` processes."""
    try:
        open_resumable(RunFolder(run_dir), {}, Ranks(world_size=world_size))
    except TochaError:
        return False
    return True


def check_matches_config_file(folder: RunFolder, saved: RunConfig) -> None:
    """config.yaml and checkpoint.pt must describe the same run (a copied-in checkpoint does not)."""
    on_disk = folder.read_config()
    if on_disk is None:
        return
    # --epochs may have extended the run; the data may have moved.
    # The model's record follows model.file, which --model-file may change (and --trust-code signs).
    follows = ("train.epochs", "model.file_sha256", "model.sources", "model.signature", "data.file_sha256",
               "data.sources", "data.signature")  # fmt: skip
    for key in (k for k in config_keys() if k not in follows and k not in WHERE_NOT_WHAT):
        in_file, in_checkpoint = get_value(on_disk, key), get_value(saved, key)
        if in_file != in_checkpoint:
            raise TochaError(
                f"{folder.path}: config.yaml and {folder.CHECKPOINT} disagree on {key} ({in_file!r} against "
                f"{in_checkpoint!r}): the checkpoint belongs to another run; nothing resumed"
            )
