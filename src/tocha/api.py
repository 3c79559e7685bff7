"""The Python API: what the commands do, as functions for notebooks and scripts.

    import tocha
    run = tocha.train(data="mnist-sample", model="mlp", epochs=2)
    model = tocha.load(run.run_dir)
    model.predict(["digit.png"])

Every option of `tocha train` is a keyword: its config key (`train.lr`), its last part (`lr`) or a
short alias (`model`, `data`, `seed`). `import tocha` stays instant: these functions are reached
through `tocha.__getattr__`, and torch is imported when one is first called.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocha.config import RunConfig, copy_config, load_config, resolve_key, set_value
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


def train(config: RunConfig | str | Path | None = None, *, progress: bool | None = None, log: Any = print,
          **options: Any) -> TrainResult:  # fmt: skip
    """Train as `tocha train` does; returns the run folder, the history (a list of dicts, one per
    epoch; `result.history_frame()` for a pandas DataFrame) and the final test evaluation.

    `progress`: a progress bar (default: in a notebook or on a terminal)."""
    from tocha.training import train as train_run

    argument("progress", progress, (bool, type(None)), "True, False or None")
    show = progress if progress is not None else (in_notebook() or None)
    return train_run(make_config(config, **options), log=log, progress=show)


def load(run_or_file: str | Path, device: str = "cpu") -> InferenceModel:
    """A trained model, ready to predict: from a run folder, a checkpoint or a .safetensors export.
    `.classes`, `.predict(images, top_k=3)`, and it is an `nn.Module` (uint8 images in, logits out)."""
    from tocha.devices import resolve_device
    from tocha.inference.model import load_inference_model

    argument("run_or_file", run_or_file, PATH, "a run folder's or a file's path")
    argument("device", device, str, "a device name (cpu, cuda, auto...)")

    return load_inference_model(run_or_file, resolve_device(device))


def evaluate(run_or_file: str | Path, data: str | None = None, **options: Any) -> EvaluateResult:
    """`tocha evaluate`: loss, accuracy, per-class report, figures (`out_dir`, `batch_size`, ...)."""
    from tocha.inference.evaluate import evaluate_checkpoint

    kinds = {"data_dir": ((*PATH, type(None)), "a folder's path"), "device": (str, "a device name"),
             "out_dir": ((*PATH, type(None)), "a folder's path"), "batch_size": (int, "a whole number"),
             "allow_other_classes": (bool, "True or False")}  # fmt: skip
    argument("run_or_file", run_or_file, PATH, "a run folder's or a file's path")
    argument("data", data, (str, type(None)), "a dataset's name or a path, or None")
    for name, value in options.items():
        if name not in kinds:
            raise TochaError(f"tocha.evaluate has no option {name!r}; its options: {', '.join(kinds)}")
        argument(name, value, *kinds[name])
    if options.get("batch_size", 1) < 1:
        raise TochaError("batch_size must be at least 1")
    return evaluate_checkpoint(run_or_file, data, **options)


def compare(vary: list[str], seeds: int = 3, out: str | Path = "reports/compare",
            baselines: list[str] | None = None, config: RunConfig | str | Path | None = None,
            log: Any = print, **options: Any) -> CompareResult:  # fmt: skip
    """`tocha compare`: every combination of `vary` (`["lr=0.001,0.01", "model=mlp,tinyvgg"]`),
    trained with seeds 0..seeds-1, summarised with spread; `.rows` is the table."""
    from tocha.experiments.compare import compare as run_compare

    argument("vary", vary, list, "a list of 'KEY=V1,V2' strings")
    for item in vary:
        argument("each of vary", item, str, "a 'KEY=V1,V2' string")
    argument("seeds", seeds, int, "a whole number of seeds")
    argument("out", out, PATH, "a folder's path")
    argument("baselines", baselines, (list, type(None)), "a list of baseline names, or None")
    base = make_config(config, **options)
    return run_compare(base, vary, list(range(seeds)), Path(out), baselines, log=log)


def export(
    run_or_file: str | Path, format: str, out: str | Path | None = None, log: Any = print, force: bool = False
) -> ExportResult:
    """`tocha export`: an onnx, pt2 or safetensors file, kept only if it passes the parity check;
    `force` replaces an existing file (never a run's own records)."""
    from tocha.exports import export_model

    argument("run_or_file", run_or_file, PATH, "a run folder's or a file's path")
    argument("format", format, str, "onnx, pt2 or safetensors")
    argument("out", out, (*PATH, type(None)), "a file's path, or None")
    argument("force", force, bool, "True or False")
    return export_model(run_or_file, format, out, log=log, force=force)
