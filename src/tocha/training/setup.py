"""From a config to everything a run needs, built once before the first epoch.

`build_setup` checks the config, loads the data and moves it to the device once, resolves every
automatic choice into a new config (the caller's is never changed), and builds the model, the
optimizer, the task and the evaluator. Nothing here trains: `training.run` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tocha.config import RunConfig, copy_config, validate, with_model_chosen
from tocha.data.batches import Batch, device_batches, shuffled_order, steps_per_epoch, usable_samples
from tocha.data.load import AUTO, load_configured, resolve_name
from tocha.data.normalize import Normalize, channel_stats
from tocha.data.table_set import check_table_config, feature_stats
from tocha.data.tables import is_table
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.devices import resolve_channels_last, resolve_device, resolve_precision
from tocha.errors import TochaError
from tocha.inference.model import InferenceModel
from tocha.models import check_model_fits, model_from_config
from tocha.models.registry import check_model_config, with_defaults
from tocha.tasks import Task, check_loss, make_task, resolve_loss, task_of
from tocha.threads import choose_threads
from tocha.training import distributed
from tocha.training.augment import Augment, augment_seed, check_translate
from tocha.training.console import auto_data_line
from tocha.training.distributed import ONE_PROCESS, Ranks
from tocha.training.finetune import (
    ALL,
    InitSource,
    fine_tuning_config,
    load_initial_weights,
    phase_of,
    phase_optimization,
    read_init_source,
)
from tocha.training.loop import Optimization
from tocha.training.optimizers import OPTIMIZERS, unknown_optimizer
from tocha.training.schedules import SCHEDULES, unknown_schedule
from tocha.training.tally import EpochTally


@dataclass
class Setup:
    """Everything a run needs, built from the config before the first epoch."""

    cfg: RunConfig  # resolved: every default filled in
    data: LoadedData  # as loaded (CPU)
    train_set: TensorSet  # on the training device
    test_set: TensorSet
    model: nn.Module  # the weights being trained
    forward_model: nn.Module  # the same model, compiled when asked for
    opt: Optimization  # optimizer, schedule, weight average, autocast dtype
    task: Task
    normalize: Normalize
    augment: Augment | None
    shuffle_generator: torch.Generator  # the batch order: the same on every rank
    augment_generator: torch.Generator  # augmentation draws: a stream of its own per rank
    evaluator: InferenceModel  # normalisation + the evaluated weights (+ flip TTA), as predict uses
    device: torch.device
    phase: str = ALL  # what trains this epoch (training.finetune)
    keep_eval: list[nn.Module] = field(default_factory=list)  # frozen batch norms
    ranks: Ranks = ONE_PROCESS  # this process among all of the run's (one, unless started by torchrun)

    @property
    def rank(self) -> int:
        return self.ranks.rank

    @property
    def world_size(self) -> int:
        return self.ranks.world_size

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train_set), self.cfg.train.batch_size, self.world_size)

    @property
    def samples_per_epoch(self) -> int:
        """Training images this process sees per epoch."""
        return usable_samples(len(self.train_set), self.world_size) // self.world_size

    @property
    def global_samples_per_epoch(self) -> int:
        """Training images all processes together see per epoch."""
        return usable_samples(len(self.train_set), self.world_size)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def enter_epoch(self, epoch: int) -> None:
        """Switch to the training phase of `epoch` (from 1): a fresh optimizer and schedule for a new
        phase, holding only what trains in it; nothing changes within a phase."""
        phase = phase_of(self.cfg.train, epoch)
        if phase != self.phase:
            self.phase = phase
            opt = self.opt
            self.opt, self.keep_eval = phase_optimization(
                self.model,
                self.cfg.train,
                phase,
                self.steps_per_epoch,
                self.device,
                opt.averaged,
                opt.amp_dtype,
            )

    def new_epoch(self) -> EpochTally:
        """A fresh epoch: a new shuffled order, empty sums."""
        order = shuffled_order(len(self.train_set), self.shuffle_generator, self.device)
        return EpochTally.begin(self.task, order)

    def batches(self, tally: EpochTally) -> Iterator[Batch]:
        """The epoch's batches from where `tally` stands (its start, or a stop part-way)."""
        return device_batches(self.train_set, tally.order, self.cfg.train.batch_size, self.normalize,
                              self.augment, rank=self.rank, world_size=self.world_size,
                              start_step=tally.steps_done)  # fmt: skip


def check_names(config: RunConfig) -> None:
    """Every name in the config exists, checked before any data is loaded, so a typo costs nothing."""
    t, d = config.train, config.data
    if table := is_table(d.name):
        check_table_config(config.model.name, d.augment_flip or bool(d.augment_translate), t.tta_flip)
    check_loss(t.loss, d.task if table else "classification")
    if t.label_smoothing:
        make_task(t.loss, t.label_smoothing, d.task)
    if t.optimizer not in OPTIMIZERS:
        raise unknown_optimizer(t.optimizer)
    if t.schedule not in SCHEDULES:
        raise unknown_schedule(t.schedule)
    check_model_config(config.model)
    log_softmax_head(config)


def log_softmax_head(config: RunConfig) -> bool:
    """NLLLoss expects log-probabilities: the log_softmax head follows the loss unless set."""
    head, loss = config.model.log_softmax, config.train.loss
    if head is None:
        return loss == "nll"
    if loss == "nll" and not head:
        raise TochaError("loss nll needs the log_softmax head (model.log_softmax: true)")
    if loss != "nll" and head:
        raise TochaError(f"the log_softmax head pairs with loss nll, not {loss}")
    return head


def load_data(config: RunConfig, log: Callable[[str], None]) -> tuple[str, LoadedData]:
    """The dataset the config names, as loaded (on the CPU), and its name with `auto` resolved
    (and said): a registered name, or the image folder's path as given."""
    name = resolve_name(config.data.name, config.data.data_dir)
    if config.data.name == AUTO:
        log(auto_data_line(name))
    return name, load_configured(config.data, name, log=log)


def normalization(config: RunConfig, data: LoadedData) -> tuple[list[float], list[float]]:
    """The per-channel mean and std: as given, or the training set's own."""
    mean, std = config.data.mean, config.data.std
    if (mean is None) != (std is None):
        raise TochaError("give both data.mean and data.std, or neither")
    if mean is None:
        mean, std = feature_stats(data) if data.table is not None else channel_stats(data.train.images)
    channels = data.image_shape[0]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise TochaError(f"data.mean and data.std need {channels} value(s) each, std > 0")
    return list(mean), list(std)


def resolve_config(config: RunConfig, name: str, data: LoadedData, device: torch.device) -> RunConfig:
    """A new config with the automatic choices made: the dataset actually used (`name`), the image
    size an image folder was read at, the normalisation, the head, the precision."""
    config = with_model_chosen(copy_config(config))  # nothing of the caller's is shared, lists included
    mean, std = normalization(config, data)
    check_translate(config.data.augment_translate, data.image_shape)
    image_size = (
        list(data.details["image_size"]) if data.details.get("image_size") else config.data.image_size
    )
    return dataclasses.replace(
        config,
        data=dataclasses.replace(
            config.data, name=name, image_size=image_size, mean=mean, std=std, task=data.task
        ),
        model=with_defaults(dataclasses.replace(config.model, log_softmax=log_softmax_head(config))),
        train=dataclasses.replace(
            config.train,
            precision=resolve_precision(config.train.precision, device)[0],
            loss=resolve_loss(data.task, config.train.loss),
            threads=torch.get_num_threads(),
        ),
    )


def ema_of(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the weights (and batch-norm statistics), or None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def build_model(cfg: RunConfig, data: LoadedData, device: torch.device) -> tuple[nn.Module, RunConfig]:
    """The model, initialised from the run's seed, on `device` in the memory layout it trains in;
    and the config with that layout filled in."""
    check_model_fits(cfg.model, data.image_shape, len(data.classes))  # before a byte is taken
    torch.manual_seed(cfg.train.seed)  # model initialisation
    model = model_from_config(cfg.model, data.image_shape, len(data.classes)).to(device)
    channels_last = resolve_channels_last(cfg.train.channels_last, device, model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, channels_last=channels_last))


def init_source(config: RunConfig, initialise: bool) -> tuple[RunConfig, InitSource | None]:
    """The weights a fine-tuning run starts from, and its config with the source's model filled in."""
    if not (config.train.init_from and initialise):
        return config, None
    source = read_init_source(config.train.init_from)
    return fine_tuning_config(config, source), source


def device_and_data(config: RunConfig, log: Callable[[str], None],
                    ranks: Ranks) -> tuple[torch.device, str, LoadedData]:  # fmt: skip
    """The training device (joining the process group with several processes) and the data, read
    and decoded once: on rank 0 first, then, from the cache, on the others."""
    device = resolve_device(config.train.device)
    if device.type == "cpu" or config.train.threads:
        torch.set_num_threads(choose_threads(config.train.threads, torch.get_num_threads()))
    if not ranks.active:
        return device, *load_data(config, log)
    device = distributed.start(ranks, device)
    return device, *distributed.first_on_main(ranks, lambda: load_data(config, log))


def build_setup(config: RunConfig, log: Callable[[str], None], ranks: Ranks = ONE_PROCESS,
                initialise: bool = True) -> Setup:  # fmt: skip
    """Check and resolve the config, load the data onto the device, build model and optimizer.
    `ranks`: this process among torchrun's. `initialise`: load `init_from`'s weights (a resumed run
    loads its own instead). (Over 50 lines on purpose: the one place the parts are put together, in
    the order they depend on each other, each a line or two.)"""
    validate(config)
    config, source = init_source(config, initialise)  # --init-from brings its model: before `auto`
    config = with_model_chosen(config)
    check_names(config)
    device, name, data = device_and_data(config, log, ranks)
    cfg = resolve_config(config, name, data, device)
    model, cfg = build_model(cfg, data, device)
    if source is not None:
        load_initial_weights(model, source, data.classes, data.image_shape, log)
    t, channels_last = cfg.train, bool(cfg.train.channels_last)
    if t.sync_batchnorm and ranks.active:
        model = distributed.sync_batchnorm(model, device)
    averaged = ema_of(model, t.ema_decay)  # after the initial weights: it starts from a copy
    amp_dtype = resolve_precision(t.precision, device)[1]
    phase = phase_of(t, 1)
    steps = steps_per_epoch(len(data.train), t.batch_size, ranks.world_size)
    opt, keep_eval = phase_optimization(model, t, phase, steps, device, averaged, amp_dtype)
    normalize = Normalize(cfg.data.mean, cfg.data.std, channels_last, data.input_scale).to(device)
    augment_generator = torch.Generator(device=device).manual_seed(augment_seed(t.seed, ranks.rank))
    augment = Augment(cfg.data.augment_flip, cfg.data.augment_translate, augment_generator)
    task = task_of(cfg, data.table)
    evaluated = averaged.module if averaged is not None else model
    forward = distributed.data_parallel(model, device) if ranks.active else model
    return Setup(
        cfg=cfg,
        data=data,
        train_set=TensorSet(data.train.images, task.prepare(data.train.labels)).to(device),  # the one copy
        test_set=data.test.to(device),
        model=model,
        forward_model=torch.compile(forward) if t.compile else forward,
        opt=opt,
        phase=phase,
        keep_eval=keep_eval,
        task=task,
        normalize=normalize,
        augment=augment if augment else None,
        shuffle_generator=torch.Generator(device=device).manual_seed(t.seed),
        augment_generator=augment_generator,
        evaluator=InferenceModel(
            evaluated,
            normalize,
            tta_flip=t.tta_flip,
            amp_dtype=amp_dtype,
            classes=data.classes,
            image_shape=data.image_shape,
            config=cfg,
            table=data.table,
        ),  # fmt: skip
        device=device,
        ranks=ranks,
    )
