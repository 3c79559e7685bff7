"""The one reader of trained files: a run folder, a checkpoint, or an export (`tocha.formats`).

What a path is comes from its content, never its name (the table in `tocha.formats` says how each
format is recognised): a folder is a run; a zip archive is an export whose format names a member it
holds (torch.export's `archive_format`, TorchScript's `constants.pkl`), else a torch.save checkpoint;
any other file is recognised by its first bytes (a safetensors header, an ONNX `ModelProto`), else
taken for a checkpoint, whose reader says what is wrong with it. Whatever it is, `read_trained`
returns one `Trained` record (config, classes, input shape, normalisation, weights, table encoding)
checked by one validation, or one clear error. Torch is imported only to load what needs it
(checkpoints): telling the kinds apart and reading an export's metadata do not.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tocha.config import RunConfig, config_from_dict, copy_config
from tocha.errors import TochaError
from tocha.formats import ARCHIVE_METADATA, CHECKPOINT, FORMATS, ONNX, RUN, SAFETENSORS
from tocha.models.code_trust import CodeTrust
from tocha.models.user_names import is_own
from tocha.runs.checkpoint import CHECKPOINT_NAME, Checkpoint, read_checkpoint
from tocha.runs.contents import contents_problem
from tocha.runs.folder import RunFolder
from tocha.tasks import task_of

EXPORT_FORMAT = "tocha-export"  # the marker in every export's metadata


@dataclass
class Trained:
    """A trained model as a file holds it, whatever the file is."""

    kind: str  # its format's name (`tocha.formats`): run, checkpoint, safetensors, onnx, pt2...
    path: Path  # the file read: a run folder's checkpoint.pt, or the file given
    config: RunConfig  # the resolved config the model was trained with
    classes: list[str]
    image_shape: tuple[int, int, int]  # (C, H, W) of its inputs (a table's rows: (F, 1, 1))
    normalization: dict[str, Any]  # {"mean", "std", "input_scale"}
    table: dict[str, Any] | None  # a table's encoding and target, else None
    epoch: int  # the epoch its weights are from (the kept one: the best on validation, or the last)
    weights: dict[str, Any] | None  # the model's state dict; None where they are inside a graph
    metadata: dict[str, Any] = field(default_factory=dict)  # an export's own (test score, input, output)
    checkpoint: Checkpoint | None = None  # a run's or checkpoint's whole record (history, training state)
    folder: RunFolder | None = None  # the folder it sits in: a run's figures and summary, if any
    session: Any = None  # ONNX: the onnxruntime session that read it, to predict with
    trust: CodeTrust = CodeTrust.RECORDED  # who chose a user's model's code (`models.code_trust`)

    @property
    def described(self) -> str:
        return FORMATS[self.kind].described

    @property
    def takes_tensors(self) -> bool:
        """Trained on your own data's inputs as given (`takes_tensors`)."""
        return takes_tensors(self.normalization, self.table is not None)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input as the model takes it (`item_shape`)."""
        return item_shape(self.normalization, self.image_shape, self.table is not None)


def takes_tensors(normalization: dict, table: bool) -> bool:
    """Whether a model whose normalisation is `normalization` was trained on your own data's inputs
    as given (floats, rows, signals, token ids), not on image bytes nor a table's rows: it is asked
    with tensors (`inference.tensors`)."""
    given = normalization.get("input_scale", 255.0) != 255.0 or normalization.get("integer") is True
    return not table and given


def item_shape(normalization: dict, image_shape: tuple[int, ...], table: bool) -> tuple[int, ...]:
    """One input as the model (and its export) takes it: your own data's signal (C, L) as recorded, a
    row's (F,) (a table's, or rows given in Python: held as (F, 1, 1)), else the image's (C, H, W),
    also for a model that takes images flattened (the flattening is the normalisation's)."""
    if normalization.get("shape"):
        return tuple(normalization["shape"])
    if (table or normalization.get("rows") is True) and tuple(image_shape[1:]) == (1, 1):
        return (image_shape[0],)
    if table:  # a series' windows (F, W, 1), taken as rows of F*W values
        return (math.prod(image_shape),)
    return tuple(image_shape)


def kind_of(path: str | Path) -> str:
    """What `path` holds, from its content (see the module's docstring). A file of no known kind is
    taken for a checkpoint, whose reader says exactly what is wrong with it."""
    path = Path(path)
    if path.is_dir():
        return RUN
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no checkpoint found"
        raise TochaError(f"{path}: {what} (expected a run folder, a checkpoint or an export)")
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        return zip_kind(path)
    return next((f.name for f in FORMATS.values() if f.magic is not None and f.magic(head)), CHECKPOINT)


def zip_kind(path: Path) -> str:
    """The format whose member the archive holds; anything else (a torch.save archive, or one too
    damaged to list) goes to the checkpoint reader."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return CHECKPOINT
    marked = (
        f.name for f in FORMATS.values() if f.zip_member and any(n.endswith(f.zip_member) for n in names)
    )
    return next(marked, CHECKPOINT)


def read_trained(path: str | Path, accept: tuple[str, ...] = tuple(FORMATS), purpose: str = "",
                 model_file: str | Path | None = None, *, trust_code: bool = False) -> Trained:  # fmt: skip
    """The trained model `path` holds, checked. `accept`: the kinds the caller can use; another kind
    is refused naming what it is and what `purpose` (a command, say) takes instead. `model_file`:
    the code of the user's model to use instead of the file the run recorded (`--model-file`);
    `trust_code`: run the code the file records though no run of this machine recorded it
    (`--trust-code`). Nothing is imported here: `trust` says who chose the code, for whoever builds
    the model (`models.code_trust`)."""
    kind = kind_of(path)
    if kind not in accept:
        takes = ", ".join(FORMATS[k].described for k in accept)
        raise TochaError(f"{path} is {FORMATS[kind].described}; {purpose or 'this'} takes {takes}")
    readers = {
        RUN: from_checkpoint,
        CHECKPOINT: from_checkpoint,
        SAFETENSORS: from_safetensors,
        ONNX: from_onnx,
    }
    reader = readers.get(kind, from_archive)  # any other format: a zip archive holding its record
    trained = reader(Path(path), kind)
    if model_file is not None:
        trained.config = with_model_file(trained.config, model_file, str(path))
        trained.trust = CodeTrust.NAMED
    elif trust_code:
        trained.trust = CodeTrust.TRUSTED
    return trained


def with_model_file(config: RunConfig, model_file: str | Path, where: str) -> RunConfig:
    """`config` with its user's model read from `model_file`, trusted because it is named now: its
    SHA-256 is taken afresh, and the weights are checked against the model it builds."""
    if not is_own(config.model.name):
        raise TochaError(f"--model-file {model_file}: {where} holds {config.model.name}, one of tocha's own "
                         "models; it needs no file")  # fmt: skip
    changed = copy_config(config)
    changed.model.file, changed.model.file_sha256 = str(Path(model_file).expanduser().resolve()), None
    changed.model.sources = changed.model.signature = None  # the record is of the file named now
    return changed


def from_checkpoint(path: Path, kind: str) -> Trained:
    ckpt = read_checkpoint(path)  # its own checks: the marker, the format version, the contents
    file = path / CHECKPOINT_NAME if kind == RUN else path
    config = config_from_dict(ckpt.config, str(file))
    return Trained(kind, file, config, ckpt.classes, tuple(ckpt.image_shape), ckpt.normalization,  # type: ignore[arg-type]
                   ckpt.table, ckpt.kept_epoch, ckpt.kept_weights, checkpoint=ckpt,
                   folder=RunFolder(path if kind == RUN else path.parent))  # fmt: skip


def from_export_metadata(kind: str, path: Path, meta: dict[str, Any], weights: dict[str, Any] | None,
                         *, session: Any = None) -> Trained:  # fmt: skip
    """The record of an export, from the metadata every tocha export carries (`exports.metadata`),
    checked as a checkpoint's contents are before anything is built from it."""
    what = FORMATS[kind].described
    if meta.get("format") != EXPORT_FORMAT:
        raise TochaError(f"{path}: {what} without tocha's metadata (classes, input shape); "
                         "load it into your own module or runtime")  # fmt: skip
    missing = [k for k in ("config", "classes", "image_shape", "normalization") if k not in meta]
    if missing:
        raise TochaError(f"{path}: {what} whose metadata is incomplete (no "
                         f"{', '.join(missing)})")  # fmt: skip
    classes, shape, norm, table = (
        meta["classes"],
        meta["image_shape"],
        meta["normalization"],
        meta.get("table"),
    )
    problem = contents_problem(classes, shape, norm, weights, table=table)
    if problem:  # the checks a checkpoint passes when it is read
        raise TochaError(f"{path}: {what} that is damaged or was not written by tocha: "
                         f"{problem}")  # fmt: skip
    config = config_from_dict(meta["config"], str(path))
    epoch = meta.get("epoch") if isinstance(meta.get("epoch"), int) else 0
    return Trained(kind, path, config, classes, tuple(shape), norm, table, epoch, weights, metadata=meta,
                   folder=RunFolder(path.parent), session=session)  # fmt: skip


def from_safetensors(path: Path, kind: str) -> Trained:
    with path.open("rb") as f:
        declared = int.from_bytes(f.read(8), "little")
    if declared > path.stat().st_size - 8:  # before the library reads (and allocates) that much
        raise TochaError(f"{path}: a safetensors header of {declared:,} bytes declared in a file of "
                         f"{path.stat().st_size:,}: cut short or damaged")  # fmt: skip
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise TochaError(f"{path} is a safetensors export: pip install 'tocha[export]' to read it") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = decode_metadata(f.metadata() or {})
        weights = load_file(str(path))
    except Exception as e:  # the library's own errors for a damaged header or body
        raise TochaError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    return from_export_metadata(kind, path, meta, weights)


def open_session(path: Path) -> Any:
    """An onnxruntime session on the CPU, its log reduced to errors (its warnings are about graph
    rewrites)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise TochaError(f"{path} is an ONNX export: pip install 'tocha[export]' to run it") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def from_onnx(path: Path, kind: str) -> Trained:
    try:
        session = open_session(path)
    except TochaError:
        raise
    except Exception as e:  # onnxruntime raises its own types for a damaged or foreign file
        raise TochaError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from e
    meta = decode_metadata(session.get_modelmeta().custom_metadata_map)
    trained = from_export_metadata(kind, path, meta, None, session=session)
    widths = [out.shape[-1] for out in session.get_outputs() if len(out.shape) == 2]
    expected = task_of(trained.config, trained.table).output_size(trained.classes)
    if len(widths) != 1 or (isinstance(widths[0], int) and widths[0] != expected):  # a name: not fixed
        raise TochaError(f"{path}: an ONNX export whose graph gives {widths} values per input where its "
                         f"metadata says {expected}")  # fmt: skip
    # The inputs are decoded to the metadata's shape; a graph fixed to another one would refuse them
    # inside onnxruntime, at the first prediction. A dimension given by name ('batch') is not fixed.
    takes = tuple(session.get_inputs()[0].shape[1:])  # (C, H, W) of an image, (F,) of a table's row
    declared = trained.input_shape
    differ = [isinstance(t, int) and t != d for t, d in zip(takes, declared, strict=False)]
    if len(takes) != len(declared) or any(differ):
        raise TochaError(f"{path}: an ONNX export whose graph takes inputs of {takes} where its metadata "
                         f"says {declared}")  # fmt: skip
    return trained


def from_archive(path: Path, kind: str) -> Trained:
    """A zip format's record (pt2, TorchScript: `extra/tocha.json`), read without loading its program."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith(f"/extra/{ARCHIVE_METADATA}")), None)
            meta = decode_metadata(json.loads(archive.read(name))) if name else {}
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise TochaError(f"{path}: not a readable {kind} archive ({e})") from None
    return from_export_metadata(kind, path, meta, None)


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """An export's metadata: string values, JSON where structured (`exports.metadata` writes them)."""
    decoded = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            decoded[key] = value
    return decoded
