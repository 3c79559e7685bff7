"""A run's config, checked and made concrete once: every automatic choice decided, frozen.

Two steps, because some choices need the data: `plan` runs before any data is read (every value's
range, every name, `--init-from`'s model, `--model auto`), so a typo costs nothing; `resolve` runs
once the data is loaded and returns the config a run records (the dataset `auto` chose, the size an
image folder was read at, the normalisation, the model's defaults and head, the loss, the precision,
the memory layout, the threads), frozen: nothing changes it afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from tocha.config import RunConfig, copy_config, freeze, validate
from tocha.data.load import AUTO, load_configured, resolve_name
from tocha.data.normalize import channel_stats
from tocha.data.table_set import check_table_config, feature_stats
from tocha.data.tables import is_table
from tocha.data.tensorset import LoadedData
from tocha.devices import resolve_channels_last, resolve_precision
from tocha.errors import TochaError
from tocha.models import model_on_meta
from tocha.models.registry import check_model_config, with_defaults
from tocha.tasks import DEFAULT as DEFAULT_TASK
from tocha.tasks import check_loss, make_task, task_class
from tocha.training.augment import check_translate
from tocha.training.console import auto_data_line
from tocha.training.finetune import InitSource, fine_tuning_config, read_init_source
from tocha.training.optimizers import OPTIMIZERS, unknown_optimizer
from tocha.training.schedules import SCHEDULES, unknown_schedule


def plan(config: RunConfig, initialise: bool = True) -> tuple[RunConfig, InitSource | None]:
    """The config checked before any data is read, with `--init-from`'s model brought in (before
    `auto` is chosen) and `--model auto` chosen; and the weights a fine-tuning run starts from.
    `initialise`: False for a resumed run, which loads its own weights instead."""
    validate(config)
    source = read_init_source(config.train.init_from) if config.train.init_from and initialise else None
    planned = copy_config(config)  # nothing of the caller's is shared, lists included
    planned = with_model_chosen(fine_tuning_config(planned, source) if source else planned)
    check_names(planned)
    return planned, source


def with_model_chosen(config: RunConfig) -> RunConfig:
    """`--model auto` made concrete: tinyvgg for images, mlp for a table (known from the name alone)."""
    if config.model.name != "auto":
        return config
    chosen = copy_config(config)
    chosen.model.name = "mlp" if is_table(config.data.name) else "tinyvgg"
    return chosen


def check_names(config: RunConfig) -> None:
    """Every name in the config exists, checked before any data is loaded, so a typo costs nothing."""
    t, d = config.train, config.data
    if table := is_table(d.name):
        check_table_config(config.model.name, d.augment_flip or bool(d.augment_translate), t.tta_flip)
    task = d.task if table else DEFAULT_TASK  # images classify; a table's target may decide later
    check_loss(t.loss, task)  # and the task exists
    if t.label_smoothing:
        make_task(task, t.loss, t.label_smoothing)
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


def resolve(planned: RunConfig, name: str, data: LoadedData, device: torch.device) -> RunConfig:
    """The planned config with every automatic choice made, frozen: the dataset actually used
    (`name`), the size an image folder was read at, the normalisation, the model's defaults and
    head, the task and its loss, the precision, the memory layout, the threads."""
    d, m, t = planned.data, planned.model, planned.train
    mean, std = normalization(planned, data)
    check_translate(d.augment_translate, data.image_shape)
    image_size = list(data.details["image_size"]) if data.details.get("image_size") else d.image_size
    model = with_defaults(dataclasses.replace(m, log_softmax=log_softmax_head(planned)))
    loss = task_class(data.task).resolve_loss(t.loss)
    outputs = make_task(data.task, loss, t.label_smoothing, data.table).output_size(data.classes)
    with_convs = model_on_meta(model, data.image_shape, outputs)  # its layout depends on its layers
    return freeze(
        dataclasses.replace(
            planned,
            data=dataclasses.replace(d, name=name, image_size=image_size, mean=mean, std=std, task=data.task),
            model=model,
            train=dataclasses.replace(
                t,
                precision=resolve_precision(t.precision, device)[0],
                loss=loss,
                threads=torch.get_num_threads(),
                channels_last=resolve_channels_last(t.channels_last, device, with_convs),
            ),
        )
    )


def resolve_config(config: RunConfig, name: str, data: LoadedData, device: torch.device) -> RunConfig:
    """`plan` and `resolve` in one call, for a caller that has read the data already."""
    return resolve(plan(config)[0], name, data, device)
