"""The served model, loaded once: bytes in, probabilities out, decoded exactly as `tocha predict`.

A run folder, a checkpoint or a .safetensors export is served by the inference model (torch); an
.onnx export by onnxruntime, without importing torch; a .pt2 export by the program it holds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.images import UnreadableImage, changes_made, load_image, mode_for_channels, peek_bytes
from tocha.data.text import columns_of
from tocha.errors import TochaError, table_model_error
from tocha.formats import FORMATS, RUN
from tocha.models.user_names import model_label
from tocha.runs.trained import Trained, read_trained
from tocha.tasks import Task, task_of

Header = tuple[str, tuple[int, int]]  # an image's mode and (width, height), from its header


@dataclass
class Predictor:
    """What the server needs of a model: its card, how to decode an upload, how to predict."""

    card: dict[str, Any]
    classes: list[str]
    image_shape: tuple[int, int, int]  # (C, H, W)
    run: Any  # uint8 (N, C, H, W) numpy -> outputs (N, ...) numpy
    task: Task  # reads the outputs as answers
    # name -> path, fixed at start: the only files the server ever reads for a client
    figures: dict[str, Path] = field(default_factory=dict)
    # Your own data's inputs (`data.given`): one input of this shape per upload, a .npy file; else None
    tensor_shape: tuple[int, ...] | None = None
    integer: bool = False  # those inputs are token ids (int64)
    text: dict[str, Any] | None = None  # a text run's tokens and vocabulary (`data.text`): uploads are texts
    generate: Any = None  # a next-token run's writer: (prompt, length, temperature, top_k, seed) -> tokens

    def converted(self, data: bytes, name: str, header: Header | None = None) -> str | None:
        """What decoding the upload changed to fit the model (`predict --json`'s `converted`); None.
        `header`: its (mode, (width, height)) where already read."""
        if self.tensor_shape is not None or self.text is not None:
            return None
        mode = mode_for_channels(self.image_shape[0])
        found = header if header is not None else peek_bytes(data, name)
        return changes_made(*found, mode, tuple(self.image_shape[1:]))  # type: ignore[arg-type]

    def decode(self, data: bytes, name: str) -> np.ndarray:
        """One upload -> uint8 (C, H, W), as `tocha predict` decodes a file (UnreadableImage if not);
        for a run on your own data's inputs, a .npy file of one input (`npy_input`)."""
        if self.text is not None:
            return text_input(data, name, self.text, self.image_shape[0])
        if self.tensor_shape is not None:
            return npy_input(data, name, self.tensor_shape, self.integer)
        return load_image(data, mode_for_channels(self.image_shape[0]), self.image_shape[1:], name=name)


class UnreadableInput(UnreadableImage):
    """An upload that is not one input of the shape and kind the model takes (a 400, as an image's)."""

    def __init__(self, path: Path, reason: str) -> None:
        TochaError.__init__(self, f"{path}: {reason}")
        self.path, self.reason = path, reason


def text_input(data: bytes, name: str, record: dict[str, Any], length: int) -> np.ndarray:
    """One text's ids (T,), as `tocha predict` encodes a line, padded or cut to the length the run
    was trained at (a batch's texts stack into one array); UTF-8, else an UnreadableImage (a 400)."""
    from tocha.data.text import TextRecord

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableInput(Path(name), f"not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise UnreadableInput(Path(name), "an empty text")
    return TextRecord.from_dict(record).encode([text], length=length)[0][0]


def npy_input(data: bytes, name: str, shape: tuple[int, ...], integer: bool) -> np.ndarray:
    """One input from a .npy file's bytes (NumPy's format, no pickled objects), checked: its shape,
    integers where the model takes token ids, finite numbers otherwise (UnreadableImage: a 400)."""
    import io

    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:
        raise UnreadableInput(Path(name), f"not a .npy file of one input {shape} ({e})") from None
    if tuple(array.shape) != shape or array.dtype.kind not in ("iu" if integer else "iuf"):
        kind = "integers" if integer else "numbers"
        raise UnreadableInput(Path(name), f"{array.dtype} {tuple(array.shape)}, not {kind} of {shape}")
    if not integer and not np.isfinite(array).all():
        raise UnreadableInput(Path(name), "holds NaN or infinity")
    return array.astype(np.int64 if integer else np.float32)


def load_predictor(
    source: str | Path, model_file: str | Path | None = None, trust_code: bool = False
) -> Predictor:
    """The served model: an ONNX export through onnxruntime (no torch), anything else tocha reads
    through the inference model (a user's model from its recorded file, or `model_file`; the
    recorded code though not recorded on this machine with `trust_code`)."""
    trained = read_trained(source, tuple(FORMATS), "tocha serve", model_file, trust_code=trust_code)
    if trained.table:
        raise table_model_error(source)
    if columns_of(trained.normalization.get("text")):  # a text alone would lack the columns it reads
        raise TochaError(f"{source} reads each text beside table columns: it answers a CSV's rows "
                         f"(tocha predict {source} rows.csv), not texts sent alone")  # fmt: skip
    task = task_of(trained.config, trained.table)
    return graph_predictor(trained, task) if FORMATS[trained.kind].graph else torch_predictor(trained, task)


def graph_predictor(trained: Trained, task: Task) -> Predictor:
    """An export that holds its computation, run by its format's runtime (onnxruntime for ONNX)."""
    from tocha.exports.onnx_predict import graph_runner

    meta = trained.metadata
    card = {
        "source": trained.path.name,
        "runtime": FORMATS[trained.kind].runtime,
        "model": model_label(trained.config.model.name),
        "dataset": trained.config.data.name,
        "classes": trained.classes,
        "image_shape": list(trained.image_shape),
        f"test_{task.primary}": meta.get(f"test_{task.primary}"),
        "parameters": None,
        "epochs": trained.epoch,
    }
    return with_tensors(
        Predictor(card, trained.classes, trained.image_shape, graph_runner(trained), task), trained
    )


def with_tensors(predictor: Predictor, trained: Trained) -> Predictor:
    """A run on your own data's inputs takes them as .npy uploads, one input each (said on its card)."""
    if text := trained.normalization.get("text"):  # texts: one per line of a text/plain body
        predictor.text = text
        predictor.card["input"] = f"text ({text['tokens']}), up to {trained.image_shape[0]} tokens a text"
        predictor.card["task"] = task_name = trained.config.data.task
        predictor.card["generates"] = task_name == "next-token" and predictor.generate is not None
        return predictor
    if trained.takes_tensors:
        predictor.tensor_shape = trained.input_shape
        predictor.integer = trained.normalization.get("integer") is True
        predictor.card["input"] = f"a .npy file of one input {list(trained.input_shape)}"
    return predictor


def torch_predictor(trained: Trained, task: Task) -> Predictor:
    import torch

    from tocha.inference.model import inference_model

    model = inference_model(trained, torch.device("cpu"))
    folder = trained.folder
    summary = folder.read_summary() if folder is not None and folder.file(folder.SUMMARY).is_file() else None
    score = summary.final_test.get(task.primary) if summary is not None else None
    card = {
        "source": trained.path.name if trained.kind != RUN else folder.path.name,  # type: ignore[union-attr]
        "runtime": "torch",
        "model": model_label(trained.config.model.name),
        "dataset": trained.config.data.name,
        "classes": model.classes,
        "image_shape": list(trained.image_shape),
        f"test_{task.primary}": score,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": model.epoch,
    }

    prepared = threading.local()

    def run(images: np.ndarray) -> np.ndarray:
        if not getattr(prepared, "threads", False):
            # OpenMP's thread count is per thread: in a thread of the server's, MKL's matrix products
            # would use every core, spinning against the event loop, whatever torch was told.
            torch.set_num_threads(torch.get_num_threads())
            prepared.threads = True
        return model.logits(torch.from_numpy(images)).numpy()

    figures = {}
    if folder is not None:  # regular files of the run itself: a link could lead anywhere
        figures = {
            name: folder.file(name)
            for name in task.figure_files()
            if folder.file(name).is_file() and not folder.file(name).is_symlink()
        }
    predictor = Predictor(card, model.classes, trained.image_shape, run, task, figures)
    if task.per_position:  # a next-token run: it writes (`inference.generate`), token by token
        predictor.generate = lambda prompt, length, temperature, top_k, seed: model.generate_stream(
            prompt, length, temperature=temperature, top_k=top_k, seed=seed
        )
    return with_tensors(predictor, trained)
