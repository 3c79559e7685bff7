"""The Python API: what the commands do, as functions for notebooks and scripts.

    import tocha
    run = tocha.train(data="mnist-sample", model="mlp", epochs=2)
    model = tocha.load(run.run_dir)
    model.predict(["digit.png"])

Every option of `tocha train` is a keyword: its config key (`train.lr`), its last part (`lr`) or a
short alias (`model`, `data`, `seed`). `model=` also takes your own `nn.Module` (trained as it is),
its class or a function returning one (built under the run's seed, with `model_args`); the run
returned then works with `load`, `evaluate`, `export` and `resume` in the same process. `import
tocha` stays instant: these functions are reached through `tocha.__getattr__`, and torch is
imported when one is first called.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.config import MODEL_ARG, RunConfig, copy_config, load_config, resolve_key, set_value
from tocha.config_fields import brief
from tocha.errors import TochaError

if TYPE_CHECKING:
    from tocha.experiments.compare import CompareResult
    from tocha.exports import ExportResult
    from tocha.inference.evaluate import EvaluateResult
    from tocha.inference.model import InferenceModel
    from tocha.training import TrainResult


PATH = (str, Path)


def argument(name: str, value: Any, kinds: type | tuple[type, ...], what: str) -> Any:
    """`value` if it is of `kinds`; else an error naming the argument (not a TypeError from deep
    inside). Booleans are not numbers here."""
    wrong = isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,))
    if wrong or not isinstance(value, kinds):
        raise TochaError(f"{name} must be {what}, not {type(value).__name__} {brief(value)}")
    return value


def make_config(config: RunConfig | str | Path | None = None, **options: Any) -> RunConfig:
    """A run config: `config` (a RunConfig or a YAML file; default all defaults) with `options` set."""
    argument("config", config, (RunConfig, *PATH, type(None)), "a RunConfig, a YAML file's path or None")
    if isinstance(config, str | Path):
        config = load_config(config)
    result = copy_config(config) if config is not None else RunConfig()
    for name, value in options.items():
        set_value(result, resolve_key(name), value)
    return result


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (then progress bars are notebook widgets)."""
    return "ipykernel" in sys.modules


def given_model(value: Any, name: str = "model") -> Any:
    """`value` if it is an `nn.Module`, a class or a function (what tocha builds the model from);
    else an error naming what it is. A string is a model's name, not a given object: None."""
    if value is None or isinstance(value, str):
        return None
    import inspect

    from torch import nn

    if isinstance(value, nn.Module) or callable(value):
        if inspect.isclass(value) and not issubclass(value, nn.Module):
            raise TochaError(f"{name}={value.__name__}: a class that is not an nn.Module")
        return value
    raise TochaError(f"{name} must be a model's name, an nn.Module, its class or a function returning one, "
                     f"not {type(value).__name__} {brief(value)}")  # fmt: skip


def chosen_code(config: Any, options: dict[str, Any], trust_code: bool, section: str = "model") -> Any:
    """Who chose a user's model's code (or data's: `section`) for this call (`models.code_trust`):
    named in it (`model=`, `model_file=`, or a RunConfig built in Python), trusted
    (`trust_code=True`), or neither: then only a record signed on this machine is followed (a YAML
    file's own model is not named by this call)."""
    from tocha.models.code_trust import chosen_by

    argument("trust_code", trust_code, bool, "True or False")
    keys = {resolve_key(name) for name in options}
    if isinstance(config, RunConfig):  # built in this call: its model is named by it
        keys.add(f"{section}.name")
    return chosen_by(keys, trust_code, section)


def train(config: RunConfig | str | Path | None = None, *, progress: bool | None = None, log: Any = print,
          trust_code: bool = False, **options: Any) -> TrainResult:  # fmt: skip
    """Train as `tocha train` does; returns the run folder, the history (a list of dicts, one per
    epoch; `result.history_frame()` for a pandas DataFrame) and the final test evaluation.

    `model`: a name (`"mlp"`, `"nets.py:Net"`), or your own `nn.Module` (trained in place, from its
    own initial weights), its class or a function returning one (built under the run's seed with
    `model_args`). `progress`: a progress bar (default: in a notebook or on a terminal).
    `trust_code`: run the model code that a YAML config names (otherwise only code named in this call,
    or recorded by a run trained on this machine, runs; give it only for files whose code you have read).
    `data`: a dataset's name or folder, or your own data: a `torch.utils.data.Dataset` of `(input,
    target)` items, a pair `(train, test)`, a mapping `{"train", "val", "test"}`, or tensors `(X, y)`
    (`tocha.data.given`: read once, split and checked as tocha's own datasets are). `loss`: a name,
    or PyTorch's own loss module or a function (outputs, targets) -> the batch's mean loss
    (`nn.CrossEntropyLoss(label_smoothing=0.1)`); `optimizer`: a name, or an optimizer class or a
    function params -> optimizer (`lambda p: torch.optim.RMSprop(p, lr=3e-4)`): recorded as what
    they are (`train.loss_given`, `train.optimizer_given`), given again to `resume`."""
    from tocha.data.given import given_name, is_given
    from tocha.training import train as train_run
    from tocha.training.pieces import Pieces

    argument("progress", progress, (bool, type(None)), "True, False or None")
    pieces = Pieces.taken_from(options)
    trust = chosen_code(config, options, trust_code)
    given = given_model(options.get("model"))
    if given is not None:
        del options["model"]
    data = options["data"] if is_given(options.get("data")) else None  # your own data, else a name
    if data is not None:
        options["data"] = given_name(data)  # what the run records: `python:` and the dataset's class
    show = progress if progress is not None else (in_notebook() or None)
    return train_run(make_config(config, **options), log=log, progress=show, given=given, trust=trust,
                     data=data, data_trust=chosen_code(config, options, trust_code, "data"),
                     pieces=pieces)  # fmt: skip


def resume(run: str | Path | TrainResult, *, model: Any = None, progress: bool | None = None,
           log: Any = print, trust_code: bool = False, data: Any = None, loss: Any = None,
           optimizer: Any = None, **options: Any) -> TrainResult:  # fmt: skip
    """Continue a stopped run exactly where it stopped (`tocha train --resume RUN`); `epochs=N`
    trains a constant-rate run longer. `model`: for a run trained from a Python object, the object
    again (its keys and shapes checked against the checkpoint); `model_file=`: the code of a run's
    model to use instead of its recorded file; `trust_code`: run the code the run records though no
    run of this machine recorded it. `data`: for a run trained on data given in Python, that data
    again (its fingerprint is checked: the very same inputs and targets). `loss`, `optimizer`: for
    a run trained with a loss or an optimizer given in Python, the same again (held to its record;
    a run `train` returned in this process has them)."""
    from tocha.training import TrainResult
    from tocha.training import resume as resume_run
    from tocha.training.pieces import Pieces

    pieces = Pieces.of(loss, optimizer)
    if pieces is None and isinstance(run, TrainResult):
        pieces = run.pieces
    path, given = run_and_model(run, model)
    argument("progress", progress, (bool, type(None)), "True, False or None")
    argument("trust_code", trust_code, bool, "True or False")
    overrides = {resolve_key(name): value for name, value in options.items()}
    show = progress if progress is not None else (in_notebook() or None)
    return resume_run(path, overrides, log=log, progress=show, given=given, trust_code=trust_code, data=data,
                      pieces=pieces)  # fmt: skip


def run_and_model(run: Any, model: Any) -> tuple[Path, Any]:
    """A run's folder and the model object to rebuild it with: `model` when given, else what a run
    returned by `train` (in this process) was given (a module: a copy, so loading weights into it
    leaves the trained one as it is)."""
    from tocha.training import TrainResult

    if isinstance(run, TrainResult):
        given = given_model(model) if model is not None else run.given
        if given is not None and given is run.model:  # trained in place: keep its weights as they are
            import copy

            given = copy.deepcopy(given)
        return run.run_dir, given
    argument("run_or_file", run, PATH, "a run folder's or a file's path, or the run tocha.train returned")
    return Path(run), given_model(model)


def load(run_or_file: str | Path | TrainResult, device: str = "cpu", *, model: Any = None,
         model_file: str | Path | None = None, trust_code: bool = False) -> InferenceModel:  # fmt: skip
    """A trained model, ready to predict: from a run folder, a checkpoint, a .safetensors export or
    the run `train` returned. `.classes`, `.predict(images, top_k=3)`, and it is an `nn.Module`
    (uint8 images in, logits out). `model`: your module (or its class or function) to load the
    weights into, for a run trained from a Python object; `model_file`: your model's code instead of
    the file the run recorded; `trust_code`: run the code the file records though no run of this
    machine recorded it (only for a file whose code you have read)."""
    from tocha.devices import resolve_device
    from tocha.inference.model import load_inference_model

    path, given = run_and_model(run_or_file, model)
    argument("device", device, str, "a device name (cpu, cuda, auto...)")
    argument("model_file", model_file, (*PATH, type(None)), "a file's path, or None")
    argument("trust_code", trust_code, bool, "True or False")
    return load_inference_model(path, resolve_device(device), given, model_file, trust_code=trust_code)


def evaluate(run_or_file: str | Path | TrainResult, data: Any = None, *, model: Any = None,
             loss: Any = None, **options: Any) -> EvaluateResult:  # fmt: skip
    """`tocha evaluate`: loss, accuracy, per-class report, figures (`out_dir`, `batch_size`, ...).
    `run_or_file` may be the run `train` returned; `model`, `model_file`: as for `load`; `data`: a
    dataset's name or path, or your own data as `train` took it (its test split is scored); `loss`:
    for a run trained with a loss given in Python, that loss (a run `train` returned has it)."""
    from tocha.inference.evaluate import evaluate_checkpoint
    from tocha.training import TrainResult
    from tocha.training.pieces import Pieces

    if (pieces := Pieces.of(loss)) is not None:
        loss = pieces.loss
    elif isinstance(run_or_file, TrainResult) and run_or_file.pieces is not None:
        loss = run_or_file.pieces.loss

    kinds = {"data_dir": ((*PATH, type(None)), "a folder's path"), "device": (str, "a device name"),
             "out_dir": ((*PATH, type(None)), "a folder's path"), "batch_size": (int, "a whole number"),
             "allow_other_classes": (bool, "True or False"), "trust_code": (bool, "True or False"),
             "model_file": ((*PATH, type(None)), "a file's path")}  # fmt: skip
    run_or_file, given = run_and_model(run_or_file, model)
    from tocha.data.given import is_given

    if not is_given(data):  # your own data, given in Python as train took it, is passed on
        argument("data", data, (str, type(None)), "a dataset's name or a path, your own data, or None")
    for name, value in options.items():
        if name not in kinds:
            raise TochaError(f"tocha.evaluate has no option {name!r}; its options: {', '.join(kinds)}")
        argument(name, value, *kinds[name])
    if options.get("batch_size", 1) < 1:
        raise TochaError("batch_size must be at least 1")
    return evaluate_checkpoint(run_or_file, data, given=given, loss=loss, **options)


def compare(vary: list[str] | None = None, seeds: int = 3, out: str | Path = "reports/compare",
            baselines: list[str] | None = None, *, config: RunConfig | str | Path | None = None,
            log: Any = print, models: dict[str, Any] | None = None, trust_code: bool = False,
            **options: Any) -> CompareResult:  # fmt: skip
    """`tocha compare`: every combination of `vary` (`["lr=0.001,0.01", "model=mlp,tinyvgg"]`),
    trained with seeds 0..seeds-1, summarised with spread; `.rows` is the table. `models`: label ->
    a model's name (`"tinyvgg"`, `"nets.py:Net"`) or your class or function returning a module,
    built afresh under each seed (`{"mine": MyModule, "tinyvgg": "tinyvgg"}`): one more axis; a
    pair gives that model arguments of its own (`{"v2-wide": (MyModule, {"hidden": 32})}`), which
    its runs record as `model.args` (`model_args=` applies to every model of yours). `data`: a
    dataset's name, or your own data as `train` takes it."""
    vary = [] if vary is None else vary
    argument("vary", vary, list, "a list of 'KEY=V1,V2' strings")
    for item in vary:
        argument("each of vary", item, str, "a 'KEY=V1,V2' string")
    argument("seeds", seeds, int, "a whole number of seeds")
    argument("out", out, PATH, "a folder's path")
    argument("baselines", baselines, (list, type(None)), "a list of baseline names, or None")
    argument("models", models, (dict, type(None)), "a mapping of labels to models, or None")
    given, per_model = {}, {}
    if models:
        from torch import nn

        names = []
        for label, value in models.items():
            if not (isinstance(label, str) and re.fullmatch(r"[A-Za-z_][\w-]*", label)):
                raise TochaError(f"models: the label {brief(label)} is not a name (letters, digits, _ and -)")
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
                value, per_model[label] = value  # (model, its own arguments)
            if isinstance(value, nn.Module):
                raise TochaError(f"models[{label!r}] is a module object: compare builds each run's "
                                 "model afresh under its seed; give its class or a function returning "
                                 "it")  # fmt: skip
            obj = given_model(value, f"models[{label!r}]")
            if obj is None:
                names.append(value)
                per_model[value] = per_model.pop(label, {})
            else:
                names.append(f"python:{label}")
                given[f"python:{label}"] = obj
                per_model[f"python:{label}"] = per_model.pop(label, {})
        vary = [*vary, "model=" + ",".join(names)]
    from tocha.data.given import given_name, is_given
    from tocha.experiments.compare import compare_cells
    from tocha.experiments.grid import expand_grid

    if is_given(data := options.get("data")):  # your own data: read once per run, named python:...
        options["data"] = given_name(data)
        given[options["data"]] = data
    axes = {resolve_key(item.partition("=")[0]) for item in vary}
    trust = chosen_code(config, {**options, **dict.fromkeys(axes)}, trust_code)
    data_trust = chosen_code(config, {**options, **dict.fromkeys(axes)}, trust_code, "data")
    base = make_config(config, **options)
    cells = [  # a model's own arguments (`models={"v2": (Net, {"hidden": 32})}`) join its cells
        {**cell, **{f"{MODEL_ARG}{k}": v for k, v in per_model.get(cell.get("model.name"), {}).items()}}
        for cell in expand_grid(vary)
    ]
    return compare_cells(base, cells, list(range(seeds)), Path(out), baselines=baselines, log=log,
                         given=given, trust=trust, data_trust=data_trust)  # fmt: skip


def export(run_or_file: str | Path | TrainResult, format: str, out: str | Path | None = None,
           log: Any = print, *, force: bool = False, model: Any = None,
           model_file: str | Path | None = None, trust_code: bool = False,
           data: Any = None) -> ExportResult:  # fmt: skip
    """`tocha export`: an onnx, pt2 or safetensors file, kept only if it passes the parity check;
    `force` replaces an existing file (never a run's own records). `run_or_file` may be the run
    `train` returned; `model`, `model_file`: as for `load`; `data`: for a run on data given in
    Python, that data again (its test split checks the export)."""
    from tocha.exports import export_model

    path, given = run_and_model(run_or_file, model)
    argument("format", format, str, "onnx, pt2 or safetensors")
    argument("out", out, (*PATH, type(None)), "a file's path, or None")
    argument("force", force, bool, "True or False")
    argument("model_file", model_file, (*PATH, type(None)), "a file's path, or None")
    argument("trust_code", trust_code, bool, "True or False")
    return export_model(path, format, out, log=log, force=force, given=given, model_file=model_file,
                        trust_code=trust_code, data=data)  # fmt: skip


def backbone(name: str, pretrained: str | None = "imagenet", *, num_classes: int = 1000,
             channels: int = 3, log: Any = print) -> Any:  # fmt: skip
    """An ImageNet backbone as a plain `nn.Module` (`mobilenet_v2`, `resnet18`, `resnet34`,
    `resnet50`): torchvision's network with torchvision's parameter names, with the weights
    `pretrained` names (`imagenet`: torchvision's file, from torch's hub cache or downloaded there,
    hash-checked; a file's path; None: freshly initialised). `num_classes` other than 1000 gives a
    new head (said); `channels=1` repeats a grayscale image to RGB. Its inputs are images
    normalised with ImageNet's mean and std (`tocha.models.backbone_layers.IMAGENET_MEAN`, `_STD`)."""
    from tocha.models import create_model
    from tocha.models.pretrained import IMAGENET_URLS, pretrained_model

    argument("name", name, str, "a backbone's name")
    if name not in IMAGENET_URLS:
        raise TochaError(f"backbone {name!r}: the backbones are {', '.join(IMAGENET_URLS)}")
    argument("pretrained", pretrained, (str, type(None)), "imagenet, a weights file's path, or None")
    shape = (argument("channels", channels, int, "1 or 3"), 224, 224)
    argument("num_classes", num_classes, int, "a whole number")
    if pretrained is None:
        return create_model(name, shape, num_classes)
    model, said = pretrained_model(name, shape, num_classes, pretrained, "backbone")
    log(said)
    return model
