"""A run's config checked before any data is read (`plan`): every value's range and every name, the
model `--init-from` brings in, `--model auto` chosen, a user's model recorded (its files read, hashed
and checked, the record signed) and, where the data's shape is known without reading it, the model
checked on it; a typo costs nothing. `training.resolve` makes the rest concrete once the data is in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from tocha.config import ModelConfig, RunConfig, copy_config, validate
from tocha.data.registry import DATASETS
from tocha.data.table_set import check_table_config
from tocha.data.tables import is_table
from tocha.errors import TochaError
from tocha.models.architecture import Architecture
from tocha.models.code_trust import CodeTrust
from tocha.models.registry import check_model_config
from tocha.models.user import check_arguments, recorded, recorded_with_maker
from tocha.models.user_names import importable_name, is_own, model_label, parse_spec, python_name
from tocha.tasks import DEFAULT as DEFAULT_TASK
from tocha.tasks import check_loss, make_task, task_class
from tocha.training.augment import augment_names
from tocha.training.finetune import InitSource, fine_tuning_config, read_init_source
from tocha.training.optimizers import OPTIMIZERS, unknown_optimizer
from tocha.training.schedules import SCHEDULES, unknown_schedule


class Planned(NamedTuple):
    config: RunConfig  # checked, `--model auto` chosen, a user's model recorded
    source: InitSource | None  # the weights a fine-tuning run starts from
    architecture: Architecture | None  # the model, checked on the data's shape where it is known


def plan(config: RunConfig, initialise: bool = True, given: Any = None, source_copy: Path | None = None,
         trust: CodeTrust = CodeTrust.RECORDED, checked: Architecture | None = None) -> Planned:  # fmt: skip
    """The config checked before any data is read, with `--init-from`'s model brought in (before
    `auto` is chosen), `--model auto` chosen and a user's model recorded (its files read, hashed and
    checked, the record signed; where the data's shape is known without reading it, the model run
    once on meta); and the weights a fine-tuning run starts from. `initialise`: False for a resumed
    run, which loads its own weights instead. `given`: a module or function given in Python;
    `source_copy`: a resumed run's copy of its model file (to say what changed in it); `trust`: who
    chose a user's model's code (`models.code_trust`); `checked`: the model as an earlier plan of
    the same network checked it (`compare`'s, for each run of a cell), not built again."""
    validate(config)
    source = read_init_source(config.train.init_from) if config.train.init_from and initialise else None
    planned = copy_config(config)  # nothing of the caller's is shared, lists included
    planned = with_model_given(fine_tuning_config(planned, source) if source else planned, given)
    planned = with_model_chosen(planned)
    check_names(planned)
    planned.model, maker = own_model_recorded(planned.model, given, source_copy, trust)
    architecture = None
    if (shape := known_shape(planned)) is not None:  # a registered dataset: checked before it is read
        architecture = Architecture(planned.model, shape[0], shape[1], given=given, source_copy=source_copy)
        if checked is not None and checked.same_network(architecture):
            architecture = checked.with_config(planned.model)
        elif maker is not None:
            architecture.made_by(maker)  # the import that recorded it: the file is not read again
        architecture.input_layout()
    return Planned(planned, source, architecture)


def with_model_given(config: RunConfig, given: Any) -> RunConfig:
    """A module or function given in Python named in the config: `FILE.py:NAME` where its class or
    function can be read again from a file, else `python:NAME` (a resumed run keeps its name)."""
    if given is None:
        return config
    name = (None if isinstance(given, nn.Module) else importable_name(given)) or python_name(given)
    if config.model.name.startswith("python:"):  # the name it was given under (compare's models=)
        return config
    if config.model.name not in ("auto", name):
        if not is_own(config.model.name) or model_label(config.model.name) != model_label(name):
            raise TochaError(f"model= gives {model_label(name)} and the config names the model "
                             f"{config.model.name}: give one of them")  # fmt: skip
        return config
    named = copy_config(config)
    named.model.name = name
    return named


def own_model_recorded(model: ModelConfig, given: Any, source_copy: Path | None,
                       trust: CodeTrust = CodeTrust.RECORDED) -> tuple[ModelConfig, Any]:  # fmt: skip
    """A user's model as the run records it: the files and their SHA-256, the arguments with the
    defaults filled in, signed (tocha's own models: as they are); and what builds it, from the import
    that recorded it (None where nothing was imported). A class or function given in Python is
    named by that call: its file is recorded as named."""
    if not is_own(model.name):
        return model, None
    if given is None:
        return recorded_with_maker(model, source_copy, trust)
    if isinstance(given, nn.Module):
        if model.args:
            raise TochaError(
                f"model={model_label(model.name)} is an object, built already: it takes no model_args"
            )
        return model, None
    args = check_arguments(given, model.args or {}, model_label(model.name))
    if parse_spec(model.name).is_python:
        return dataclasses.replace(model, args=args or None), None
    named = dataclasses.replace(model, args=args or None, file=None, file_sha256=None, sources=None)
    return recorded(named, source_copy, CodeTrust.NAMED), None  # built from the object given, not the file


def known_shape(config: RunConfig) -> tuple[tuple[int, int, int], int] | None:
    """A registered dataset's input shape and class count, known without reading it (else None)."""
    spec = DATASETS.get(config.data.name)
    if spec is None or config.data.image_size:
        return None
    return spec.image_shape, len(spec.classes)


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
    if is_own(config.model.name) and config.model.log_softmax is not None:
        raise TochaError(f"--log-softmax is an option of tocha's own models; "
                         f"{model_label(config.model.name)} ends as its code says (with nn.LogSoftmax, "
                         "loss auto is nll)")  # fmt: skip
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
    names = augment_names(d.augment)
    if names and table:
        raise TochaError(f"--augment {d.augment}: augmentation is for images, not tables")
    mixing = {"mixup", "cutmix"} & set(names)  # images: the task is known (a table was refused above)
    if mixing and not task_class(task).takes_mixed_labels(task_class(task).resolve_loss(t.loss)):
        raise TochaError(f"--augment {d.augment}: MixUp and CutMix mix the labels, which the cross_entropy "
                         f"loss of classification takes; not {t.loss} ({task})")  # fmt: skip
    if t.log == "tensorboard":
        from tocha.training.tensorboard_log import check_tensorboard

        check_tensorboard()


def log_softmax_head(config: RunConfig) -> bool:
    """NLLLoss expects log-probabilities: the log_softmax head follows the loss unless set (a user's
    model has no such option: its code decides)."""
    head, loss = config.model.log_softmax, config.train.loss
    if is_own(config.model.name):
        return False
    if head is None:
        return loss == "nll"
    if loss == "nll" and not head:
        raise TochaError("loss nll needs the log_softmax head (model.log_softmax: true)")
    if loss != "nll" and head:
        raise TochaError(f"the log_softmax head pairs with loss nll, not {loss}")
    return head
