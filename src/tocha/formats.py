"""Every kind of trained file tocha reads or writes, in one table (`FORMATS`): its name, how its
content is recognised (never by the file's name), the suffix `tocha export` gives it, what writes and
runs it, and what it can do. Plain data, with no torch and no NumPy: the command line reads it.

- a run folder and a checkpoint (`torch.save`): the weights and the run's whole record; they train
  further (`--resume`, `--init-from`), and tocha rebuilds the model from them;
- safetensors: the weights, with the record as metadata; rebuilt by tocha (it needs the model's code);
- ONNX, pt2 (torch.export) and TorchScript: the computation itself, with the record as metadata; they
  predict and serve without the model's code, and cannot be trained further (`graph`).

A new export format is one row here and one module in `tocha/exports/` that writes and runs it
(`export_bytes(model, metadata, example) -> bytes`, `runner(path, given) -> numpy in, numpy out`).
A zip archive is recognised by a member only its format holds (`zip_member`); any other file by its
first bytes (`magic`). A zip format's record is read from its `extra/tocha.json` member.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

RUN, CHECKPOINT, SAFETENSORS, ONNX, PT2, TORCHSCRIPT = (
    "run",
    "checkpoint",
    "safetensors",
    "onnx",
    "pt2",
    "torchscript",
)
ARCHIVE_METADATA = "tocha.json"  # a zip format's record: `<archive>/extra/tocha.json`
# The first protobuf tags a ModelProto may have after its IR version (producer, graph, opsets...).
ONNX_SECOND_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72}


def is_safetensors(head: bytes) -> bool:
    return len(head) >= 9 and head[8:9] == b"{"  # a little-endian header length, then its JSON


def is_onnx(head: bytes) -> bool:
    """A protobuf `ModelProto` whose first field is its IR version (a small varint)."""
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in ONNX_SECOND_TAGS


@dataclass(frozen=True)
class FileFormat:
    name: str  # as `--format` takes it and `Trained.kind` holds it
    described: str  # in messages: "an ONNX export"
    suffix: str = ""  # of the file `tocha export --format NAME` writes; "": tocha does not export it
    graph: bool = False  # holds its computation: runs without the model's code, never trains further
    runtime: str = "torch"  # what runs it (said on the served page's card)
    zip_member: str = ""  # a zip archive holding a member whose name ends so is of this format
    magic: Callable[[bytes], bool] | None = None  # else, its first 16 bytes say it is
    writer: str = ""  # the module of `tocha.exports` that writes and runs it
    needs: tuple[str, ...] = ()  # the Python modules writing and running it need


FORMATS: dict[str, FileFormat] = {f.name: f for f in (
    FileFormat(RUN, "a run folder"),
    FileFormat(CHECKPOINT, "a checkpoint"),
    FileFormat(SAFETENSORS, "a safetensors export", ".safetensors", magic=is_safetensors,
               writer="safetensors_file", needs=("safetensors",)),
    FileFormat(ONNX, "an ONNX export", ".onnx", graph=True, runtime="onnxruntime", magic=is_onnx,
               writer="onnx_file", needs=("onnx", "onnxscript", "onnxruntime")),
    FileFormat(PT2, "a torch.export (pt2) export", ".pt2", graph=True, runtime="torch.export",
               zip_member="/archive_format", writer="pt2_file"),
    FileFormat(TORCHSCRIPT, "a TorchScript export", ".torchscript", graph=True, runtime="TorchScript",
               zip_member="/constants.pkl", writer="torchscript_file"),
)}  # fmt: skip
EXPORTS = tuple(name for name, f in FORMATS.items() if f.writer)  # `tocha export --format` choices
GRAPHS = tuple(name for name, f in FORMATS.items() if f.graph)  # run without the model's code
WITH_WEIGHTS = tuple(name for name, f in FORMATS.items() if not f.graph)  # tocha rebuilds their model
