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

from tocha.config import DataConfig, ModelConfig, RunConfig, copy_config, set_value, validate
from tocha.data.code import is_data_code, opened
from tocha.data.registry import DATASETS
from tocha.data.table_set import check_table_config
from tocha.data.tables import is_table
from tocha.data.text_set import check_text_config, is_text
from tocha.errors import TochaError
from tocha.models.architecture import Architecture
from tocha.models.code_trust import CodeTrust
from tocha.models.pretrained import PretrainedWeights
from tocha.models.registry import check_model_config
from tocha.models.user import Maker, check_arguments, recorded, recorded_with_maker
from tocha.models.user_names import importable_name, is_own, model_label, parse_spec, python_name
from tocha.tasks import DEFAULT as DEFAULT_TASK
from tocha.tasks import check_loss, make_task, task_class
from tocha.training.augment import augment_names
from tocha.training.finetune import InitSource, fine_tuning_config, read_init_source
from tocha.training.optimizers import OPTIMIZERS, unknown_optimizer
from tocha.training.pieces import Pieces, is_given_piece, unnamed_piece
from tocha.training.recipe import pretrained_weights, with_recipe
from tocha.training.schedules import SCHEDULES, unknown_schedule


class Planned(NamedTuple):
    """A run's config as `plan` leaves it (the second of a run's three stages: as given, planned,
    resolved), with what planning read so that nothing reads it again."""

    config: RunConfig  # checked, `--model auto` chosen, a user's model recorded
    source: InitSource | None  # the weights a fine-tuning run starts from
    architecture: Architecture | None  # the model, checked on the data's shape where it is known
    maker: Maker | None = None  # what builds a user's model, from the import that recorded it
    asked: ModelConfig | None = None  # the model as asked, before it was recorded
    data: Any = None  # your own data, as the file `--data FILE.py:NAME` names gave it (`data.code`)
    pretrained: PretrainedWeights | None = None  # the weights `--pretrained` names, read and checked

    def with_run(self, **changes: Any) -> Planned:
        """The same plan for another run of it (a comparison's seeds): train keys that no check
        depends on (`seed`, `threads`) and where it is written (`out_dir`, `run_name`)."""
        config = copy_config(self.config)
        for key, value in changes.items():
            set_value(config, key, value)
        validate(config)
        return self._replace(config=config)


def plan(
    config: RunConfig,
    *,
    initialise: bool = True,
    given: Any = None,
    source_copy: Path | None = None,
    trust: CodeTrust = CodeTrust.RECORDED,
    earlier: Planned | None = None,
    data_trust: CodeTrust = CodeTrust.RECORDED,
    pieces: Pieces | None = None,
) -> Planned:
    """The config checked before any data is read, with `--init-from`'s model brought in (before
    `auto` is chosen), `--model auto` chosen and a user's model recorded (its files read, hashed and
    checked, the record signed; where the data's shape is known without reading it, the model run
    once on meta); and the weights a fine-tuning run starts from. `initialise`: False for a resumed
    run, which loads its own weights instead. `given`: a module or function given in Python;
    `source_copy`: a resumed run's copy of its model file (to say what changed in it); `trust`: who
    chose a user's model's code (`models.code_trust`); `earlier`: the plan of another config of the
    same comparison, whose model record and checked network serve this one where its model is the
    same (its file is not read again, its network not built again); `data_trust`: who chose your
    data's code, where `--data FILE.py:NAME` names it (`data.code`): it is imported and recorded
    here, and what it gives is read with the data. `pieces`: a loss and an optimizer factory given
    in Python (`training.pieces`): named and recorded here."""
    validate(config)
    source = read_init_source(config.train.init_from) if config.train.init_from and initialise else None
    planned = copy_config(config)  # nothing of the caller's is shared, lists included
    planned = with_model_given(fine_tuning_config(planned, source) if source else planned, given)
    planned = with_recipe(with_model_chosen(pieces.named(planned) if pieces is not None else planned))
    if (problem := unnamed_piece(planned, pieces)) is not None:
        raise TochaError(problem)
    check_names(planned)
    planned.data, data = own_data_recorded(planned.data, data_trust)
    asked = planned.model
    if earlier is not None and earlier.maker is not None and earlier.asked == asked:
        planned.model, maker = earlier.config.model, earlier.maker  # recorded for the same model
    else:
        planned.model, maker = own_model_recorded(asked, given, source_copy, trust)
    architecture = None
    if (shape := known_shape(planned)) is not None:  # a registered dataset: checked before it is read
        architecture = Architecture(planned.model, shape[0], shape[1], given=given, source_copy=source_copy)
        if (
            earlier is not None
            and earlier.architecture is not None
            and earlier.architecture.same_network(architecture)
        ):
            architecture = earlier.architecture.with_config(planned.model)
        elif maker is not None:
            architecture.made_by(maker)  # the import that recorded it: the file is not read again
        architecture.input_layout()
    planned, pretrained = pretrained_weights(planned) if initialise else (planned, None)
    return Planned(planned, source, architecture, maker, asked, data, pretrained)


def own_data_recorded(data: DataConfig, trust: CodeTrust) -> tuple[DataConfig, Any]:
    """Your own data's record and what its file gives (`data.code`; the config's data as it is for
    any other data). A comparison's cells each call NAME again (the file is imported once)."""
    if not is_data_code(data.name):
        return data, None
    return opened(data, trust)


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
            raise TochaError(
                f"model= gives {model_label(name)} and the config names the model "
                f"{config.model.name}: give one of them"
            )
        return config
    named = copy_config(config)
    named.model.name = name
    return named


def own_model_recorded(
    model: ModelConfig, given: Any, source_copy: Path | None, trust: CodeTrust = CodeTrust.RECORDED
) -> tuple[ModelConfig, Maker | None]:
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
    chosen.model.name = "gru" if is_text(config.data) else "mlp" if is_table(config.data.name) else "tinyvgg"
    return chosen


def check_names(config: RunConfig) -> None:
    """Every name in the config exists, checked before any data is loaded, so a typo costs nothing."""
    t, d = config.train, config.data
    text = is_text(d)
    table = not text and is_table(d.name)
    if t.shuffle == "lengths" and not text:
        raise TochaError("--shuffle lengths groups texts of near lengths; this data is not text")
    if text:
        augmented = d.augment_flip or bool(d.augment_translate) or d.augment != "none"
        check_text_config(config.model.name, augmented, t.tta_flip)
    elif table:
        check_table_config(config.model.name, d.augment_flip or bool(d.augment_translate), t.tta_flip)
    task = d.task if table or text else DEFAULT_TASK  # images classify; a table's target may decide later
    check_loss(t.loss, task)  # and the task exists
    if t.label_smoothing:
        make_task(task, t.loss, t.label_smoothing)
    if t.optimizer not in OPTIMIZERS and not is_given_piece(t.optimizer):  # given: named in `plan`
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
        raise TochaError(
            f"--augment {d.augment}: MixUp and CutMix mix the labels, which the cross_entropy "
            f"loss of classification takes; not {t.loss} ({task})"
        )
    if t.log == "tensorboard":
        from tocha.training.tensorboard_log import check_tensorboard

        check_tensorboard()


def log_softmax_head(config: RunConfig) -> bool:
    """NLLLoss expects log-probabilities: the log_softmax head follows the loss unless set (a user's
    model has no such option: its code decides)."""
    if is_own(config.model.name):
        return False
    head, loss = (config.model.args or {}).get("log_softmax"), config.train.loss
    if head is None:
        return loss == "nll"
    if loss == "nll" and not head:
        raise TochaError("loss nll needs the log_softmax head (model.log_softmax: true)")
    if loss != "nll" and head:
        raise TochaError(f"the log_softmax head pairs with loss nll, not {loss}")
    return head


def with_head(config: RunConfig) -> ModelConfig:
    """The model with its head decided (`log_softmax_head`) among its options; a user's as it is."""
    if is_own(config.model.name):
        return config.model
    options = {**(config.model.args or {}), "log_softmax": log_softmax_head(config)}
    return dataclasses.replace(config.model, args=options)
