"""The export itself: load the run's inference model, write the file, prove it, keep it or not."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tocha.errors import TochaError
from tocha.exports.metadata import export_metadata
from tocha.exports.parity import Parity, check_parity
from tocha.files import TMP_PREFIX, atomic_write_text, umask
from tocha.formats import EXPORTS, FORMATS, RUN, WITH_WEIGHTS
from tocha.inference.model import InferenceModel, inference_model
from tocha.locks import LOCK_NAME, hold
from tocha.runs import RunFolder
from tocha.runs.trained import Trained, read_trained

# A run folder's own records, never replaced by an export, not even with --force.
RECORDS = (RunFolder.CONFIG, RunFolder.METRICS, RunFolder.CHECKPOINT, RunFolder.SUMMARY, RunFolder.DIVERGED,
           RunFolder.MODEL_SOURCE, RunFolder.MODEL_REPR, LOCK_NAME)  # fmt: skip


@dataclass
class ExportResult:
    path: Path
    format: str
    bytes: int
    export_seconds: float  # writing the file (tracing, conversion)
    parity: Parity
    parity_path: Path


def export_model(run_or_checkpoint: str | Path, format: str, out: str | Path | None = None,
                 log: Callable[[str], None] = print, *, force: bool = False, given: Any = None,
                 model_file: str | Path | None = None, trust_code: bool = False,
                 data: Any = None) -> ExportResult:  # fmt: skip
    """Export a run (or checkpoint) as `format`; the file is kept only if it passes the parity check.
    An existing file is replaced only with `force`, and a run's own records never are. `given`,
    `model_file`: a user's model as a Python object, or its code instead of the recorded file;
    `trust_code`: run the recorded code though no run of this machine recorded it. `data`: the data
    a run trained on data given in Python was given (its test split checks the export)."""
    if format not in EXPORTS:
        raise TochaError(f"unknown export format {format!r}; choose from {', '.join(EXPORTS)}")
    check_installed(format, FORMATS[format].needs)
    writer = importlib.import_module(f"tocha.exports.{FORMATS[format].writer}")  # export_bytes, runner
    trained = read_trained(run_or_checkpoint, WITH_WEIGHTS, "tocha export", model_file, trust_code=trust_code)
    target = Path(out) if out else default_path(trained, FORMATS[format].suffix)
    check_target(target, trained, force)
    model = inference_model(trained, torch.device("cpu"), given)
    model.amp_dtype = None  # exported graphs compute in float32, whatever the run trained in
    check_finite(model, run_or_checkpoint)
    images, labels = test_split(model, data, trust_code)
    reference = model.logits(torch.from_numpy(images)).numpy().astype("float64")
    metadata = export_metadata(model, model.task.export_score(reference, labels))
    started = time.perf_counter()
    data = writer.export_bytes(model, metadata, torch.from_numpy(images[:2]))  # in memory: written below
    seconds = time.perf_counter() - started
    with writing_into(target.parent):  # a run folder: one writer at a time
        temp = unique_temp(target)
        try:
            temp.write_bytes(data)  # a full disk: an OSError naming the export's path
            words = "rows" if model.table is not None else "inputs" if model.takes_tensors else "images"
            parity = check_parity(
                writer.runner(temp, given), images, labels, reference, task=model.task, words=words
            )
            if not parity.ok:
                raise TochaError(f"{format} export of {run_or_checkpoint} failed its parity check, nothing "
                                 f"kept: {parity.line(model.task)}")  # fmt: skip
            temp.chmod(0o666 & ~umask())
            os.replace(temp, target)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(target)) from None
        finally:
            temp.unlink(missing_ok=True)
        parity_path = target.with_name(target.name + ".parity.json")
        atomic_write_text(parity_path, json.dumps({"format": format, **parity.to_dict()}, indent=2) + "\n")
    log(f"wrote {target} ({target.stat().st_size:,} bytes, {seconds:.1f}s) · {parity.line(model.task)}")
    return ExportResult(target, format, target.stat().st_size, seconds, parity, parity_path)


def check_target(target: Path, trained: Trained, force: bool) -> None:
    """Where an export may go: never over a run's records or the file it is made from; over another
    existing file only with `force`, and only a regular file."""
    if target.name in RECORDS and (target.parent / RunFolder.CHECKPOINT).exists():
        raise TochaError(f"--out {target}: that is the run's own {target.name}; choose another name")
    if target.exists() and target.resolve() == trained.path.resolve():
        raise TochaError(f"--out {target}: that is the file being exported; choose another name")
    if target.exists() or target.is_symlink():
        if not target.is_file() or target.is_symlink():
            raise TochaError(f"--out {target}: exists and is not a regular file; choose another name")
        if not force:
            raise TochaError(f"--out {target}: exists; give --force to replace it, or choose another name")


def writing_into(folder: Path) -> contextlib.AbstractContextManager:
    """The folder's lock when it is a run folder (one writer at a time: training, resume, an export)."""
    if (folder / RunFolder.CHECKPOINT).is_file():
        return hold(folder, "tocha export")
    return contextlib.nullcontext()


def unique_temp(target: Path) -> Path:
    """A temporary name of its own beside `target` (renamed into place once the file has proven
    itself): two exports at once never share one."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.", dir=target.parent)
    except OSError as e:
        raise TochaError(f"cannot write {target}: {e.strerror or e}") from e
    os.close(fd)
    return Path(name)


def check_installed(format: str, modules: tuple[str, ...]) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise TochaError(f"--format {format} needs {', '.join(missing)}: pip install 'tocha[export]'")


def check_finite(model: InferenceModel, where: str | Path) -> None:
    for name, tensor in model.model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TochaError(f"{where}: weight {name} holds NaN or infinite values; nothing to export")


def default_path(trained: Trained, suffix: str) -> Path:
    """`RUN/model<suffix>` for a run folder, `<file stem><suffix>` beside a checkpoint or export."""
    if trained.kind == RUN:
        return trained.folder.file(f"model{suffix}")  # type: ignore[union-attr]
    return trained.path.with_suffix(suffix)


def test_split(model: InferenceModel, given: Any = None, trust_code: bool = False) -> tuple:
    """The run's whole test split as numpy arrays (uint8 images, labels), the parity check's data
    (your own data: read again through its file, or `given` again in Python, as training split it)."""
    from tocha.data.code import data_of_code, is_data_code
    from tocha.data.given import is_given_name, load_given, not_on_disk
    from tocha.data.load import load_configured

    assert model.config is not None
    # The test split only: a validation carve (of the training split) plays no part here.
    cfg = dataclasses.replace(model.config.data, val_fraction=0)
    if given is None and is_data_code(cfg.name):
        given = data_of_code(cfg, None, trust_code)
    if given is not None:
        data = load_given(given, cfg, cfg.name, log=None, seed=model.config.train.seed)
    elif is_given_name(cfg.name):
        raise not_on_disk(cfg.name)
    else:
        data = load_configured(cfg, log=lambda _line: None)
    if tuple(data.image_shape) != tuple(model.image_shape or ()):
        raise TochaError(f"the test split of {model.config.data.name} no longer fits the model")
    inputs = data.test.images.numpy()
    if model.table is not None:  # a table's export takes rows (N, F)
        inputs = inputs.reshape(len(inputs), -1)
    elif model.takes_tensors:  # your own data's: each input as it was given, (N, F), (N, C, L)...
        inputs = inputs.reshape(len(inputs), *model.item_shape)
    return inputs, data.test.labels.numpy()
