"""PyTorch's own pieces given in Python for a run: a loss and an optimizer.

`tocha.train(loss=nn.CrossEntropyLoss(label_smoothing=0.1))` takes a loss module, or a function
`(outputs, targets) -> the batch's mean loss`; `optimizer=lambda params: torch.optim.RMSprop(params,
lr=3e-4)` takes a function (or an optimizer class) that builds a `torch.optim.Optimizer` from the
parameters. The run records each by name (`train.loss: python:CrossEntropyLoss`) and by what it is
(`train.loss_given`, `train.optimizer_given`: the class and every setting), and its learning rate and
weight decay as the optimizer's own. They are Python objects, not names: a later process (`resume`,
`evaluate`) is given them again, and what it is given is held to the record, so a resume stays exact.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from tocha.config import RunConfig, copy_config, resolve_key
from tocha.config_fields import brief
from tocha.errors import TochaError

PYTHON = "python:"  # the prefix of a piece given in Python, in `train.loss` and `train.optimizer`


def is_given_piece(name: str | None) -> bool:
    """Whether a loss's or optimizer's recorded name is one given in Python."""
    return bool(name) and name.startswith(PYTHON)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Pieces:
    """A loss and an optimizer factory given in Python (either may be None: tocha's own by name)."""

    loss: Any = None
    optimizer: Any = None

    @classmethod
    def of(cls, loss: Any = None, optimizer: Any = None) -> Pieces | None:
        """The pieces given as `loss=` and `optimizer=`, checked; None where neither is an object (a
        name is the config's, as on the command line)."""
        loss = None if loss is None or isinstance(loss, str) else loss
        optimizer = None if optimizer is None or isinstance(optimizer, str) else optimizer
        if loss is None and optimizer is None:
            return None
        if loss is not None:
            check_loss_object(loss)
        if optimizer is not None and not callable(optimizer):
            raise TochaError(f"optimizer must be a name (sgd, adam, adamw), an optimizer class or a function "
                             f"params -> torch.optim.Optimizer, not {type(optimizer).__name__} "
                             f"{brief(optimizer)}")  # fmt: skip
        return cls(loss, optimizer)

    @classmethod
    def taken_from(cls, options: dict[str, Any]) -> Pieces | None:
        """The loss and optimizer given as objects among a call's options (`tocha.train(loss=...)`),
        taken out of `options`; names stay there, as the config's."""
        objects = {}
        for name in list(options):
            key, value = resolve_key(name), options[name]
            if key in ("train.loss", "train.optimizer") and value is not None and not isinstance(value, str):
                objects[key] = options.pop(name)
        for key in objects.keys() & {resolve_key(name) for name in options}:
            raise TochaError(f"{key} is given twice, as an object and as a name: give one of them")
        return cls.of(objects.get("train.loss"), objects.get("train.optimizer"))

    def named(self, config: RunConfig) -> RunConfig:
        """The config naming these pieces (`python:NAME`) and recording what they are, with the
        optimizer's own rate and weight decay; a config that records pieces already (a resumed
        run's) must record these very ones."""
        named = copy_config(config)
        t = named.train
        if self.loss is not None:
            t.loss, t.loss_given = held(t.loss, t.loss_given, piece_name(self.loss), describe_loss(self.loss),
                                        "loss", unset="auto")  # fmt: skip
        if self.optimizer is not None:
            made = self.build_optimizer([probe_parameter()])
            recorded = describe_optimizer(made)
            name = PYTHON + type(made).__name__
            t.optimizer, t.optimizer_given = held(t.optimizer, t.optimizer_given, name, recorded, "optimizer",
                                                  unset=t.optimizer)  # fmt: skip
            t.lr = float(made.defaults.get("lr", t.lr))
            t.weight_decay = float(made.defaults.get("weight_decay", 0.0))
        return named

    def build_optimizer(self, groups: list[Any]) -> Any:
        """The optimizer the factory builds for `groups` (parameters or parameter groups), checked."""
        import torch

        try:
            made = self.optimizer(groups)
        except TochaError:
            raise
        except Exception as e:  # the factory is the user's code: its error, named as theirs
            raise TochaError(f"optimizer= raised {type(e).__name__}: {e}") from e
        if not isinstance(made, torch.optim.Optimizer):
            raise TochaError(f"optimizer= must return a torch.optim.Optimizer, not {type(made).__name__}")
        return made


def piece_name(obj: Any) -> str:
    """`python:NAME`: a module's class name, a function's name (a lambda: `lambda`)."""
    named = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    name = getattr(named, "__name__", "")
    return PYTHON + (name if name.isidentifier() else "lambda")


def check_loss_object(loss: Any) -> None:
    """A loss module or function that returns the batch's mean: a module with another reduction is
    refused (tocha's sums and learning rates read the loss as a mean over the batch)."""
    from torch import nn

    if inspect.isclass(loss):
        raise TochaError(f"loss={loss.__name__} is a class: give an instance, {loss.__name__}(), or a "
                         "function (outputs, targets) -> loss")  # fmt: skip
    if not callable(loss):
        raise TochaError(f"loss must be a name, an nn.Module or a function (outputs, targets) -> loss, not "
                         f"{type(loss).__name__} {brief(loss)}")  # fmt: skip
    reduction = getattr(loss, "reduction", "mean") if isinstance(loss, nn.Module) else "mean"
    if reduction != "mean":
        raise TochaError(f"loss={type(loss).__name__}(reduction={reduction!r}): tocha reads the loss as the "
                         "batch's mean (its sums and learning rates assume it); give "
                         "reduction='mean'")  # fmt: skip


def describe_loss(loss: Any) -> str:
    """What a loss is, in words a record keeps: a module's class with its settings and buffers (its
    repr leaves out `label_smoothing`), a function's module and name."""
    from torch import nn

    if not isinstance(loss, nn.Module):
        return f"function {getattr(loss, '__module__', '?')}.{getattr(loss, '__qualname__', repr(loss))}"
    settings = {k: v for k, v in vars(loss).items() if not k.startswith("_") and k != "training"}
    buffers = {k: (v.tolist() if v is not None else None) for k, v in loss.named_buffers()}
    return f"{type(loss).__name__}({', '.join(f'{k}={v!r}' for k, v in {**settings, **buffers}.items())})"


def describe_optimizer(optimizer: Any) -> str:
    """An optimizer's class with every default it was built with (the rate, betas, decay...)."""
    settings = ", ".join(f"{k}={v!r}" for k, v in sorted(optimizer.defaults.items()))
    return f"{type(optimizer).__name__}({settings})"


def probe_parameter() -> Any:
    """One parameter to build an optimizer on, to see what the factory makes before a run starts."""
    import torch

    return torch.nn.Parameter(torch.zeros(1))


def held(name: str, recorded: str | None, given_name: str, given: str, what: str, *,
         unset: str) -> tuple[str, str]:  # fmt: skip
    """The name and record of a piece: a run that records one already (resumed) must be given the same;
    a config that names another (`loss: nll`) is a conflict, unless it is the default (`unset`)."""
    if recorded is not None and (recorded != given or name != given_name):
        raise TochaError(f"{what}= gives {given}; the run was trained with {recorded} ({name}): give that "
                         "one again, for the run to go on as it was")  # fmt: skip
    if recorded is None and name not in (unset, given_name):
        raise TochaError(
            f"{what}= gives {given_name} and the config names the {what} {name}: give one of them"
        )
    return given_name, given


def unnamed_piece(config: RunConfig, pieces: Pieces | None) -> str | None:
    """What a config names as given in Python and this call did not give (resume it from Python)."""
    t, pieces = config.train, pieces or Pieces()
    named = (("loss", t.loss, t.loss_given, pieces.loss),
             ("optimizer", t.optimizer, t.optimizer_given, pieces.optimizer))  # fmt: skip
    for what, name, recorded, given in named:
        if is_given_piece(name) and given is None:
            return (f"this run's {what} was given in Python ({name}: {recorded}); a command line cannot "
                    f"give it: go on from Python, tocha.resume(run, {what}=...) with that "
                    f"{what}")  # fmt: skip
    return None


def given_line(config: RunConfig) -> str | None:
    """What the run says of the pieces it was given in Python, once, as it starts (None: none given)."""
    t = config.train
    said = [f"{what} {record}" for what, record in (("loss", t.loss_given), ("optimizer", t.optimizer_given))
            if record is not None]  # fmt: skip
    if not said:
        return None
    return (f"given in Python: {'; '.join(said)} (config.yaml records them; resume and evaluate are given "
            "them again)")  # fmt: skip


def check_loss_value(loss: Any, outputs: Any, targets: Any) -> None:
    """The given loss on a batch of zeros shaped as the model's outputs: one number with a gradient."""
    import torch

    try:
        value = loss(outputs, targets)
    except Exception as e:  # the user's function: its error, named as theirs
        raise TochaError(f"loss= raised {type(e).__name__} on outputs {tuple(outputs.shape)} and targets "
                         f"{tuple(targets.shape)} {targets.dtype}: {e}") from e  # fmt: skip
    if not isinstance(value, torch.Tensor) or value.ndim != 0 or value.grad_fn is None:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise TochaError(f"loss= must return the batch's mean loss, one number with a gradient; it returned "
                         f"{got}")  # fmt: skip
