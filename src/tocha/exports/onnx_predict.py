"""`tocha predict model.onnx IMAGE...` (or a pt2 or TorchScript export): answers from an export that
holds the computation itself, through onnxruntime without importing torch (ONNX), or the runner of its
format's module (`tocha.formats`: torch.export, TorchScript).

The images are decoded by the same code as training data (`tocha.data.images`, Pillow and NumPy
only), to the size and mode stored in the file's metadata; the graph itself normalises them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tocha.data.answered import answered_files, answered_rows
from tocha.data.images import decode_files, mode_for_channels
from tocha.data.table_encoder import encode_file
from tocha.errors import TochaError, table_model_error
from tocha.formats import FORMATS, GRAPHS, ONNX
from tocha.runs.trained import Trained, read_trained
from tocha.tasks import Answers, check_top_k, task_of


def io_names(table: bool) -> tuple[str, str]:
    """The graph's input and output names, saying what goes in and comes out: an image model's
    uint8 `images` -> `logits`, a table model's encoded `rows` -> `predictions`."""
    return ("rows", "predictions") if table else ("images", "logits")


def run_graph(session: Any, inputs: Any) -> Any:
    """The graph's one output for its one input, whatever they are called (files exported before
    the names said what they hold called every input `images`)."""
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def graph_runner(trained: Trained) -> Callable[[np.ndarray], np.ndarray]:
    """Inputs -> outputs of an export's own graph: onnxruntime's session that read it (ONNX), or
    its format's runner (torch is imported only for those)."""
    if trained.kind == ONNX:
        return lambda inputs: run_graph(trained.session, inputs)
    import importlib

    return importlib.import_module(f"tocha.exports.{FORMATS[trained.kind].writer}").runner(trained.path)


def answer_onnx(path: str | Path, images: list[str | Path], top_k: int = 3) -> Answers:
    """Each image file's answer (a classifier's top-k classes) beside its path, from the file's
    graph and its task's reading of the outputs."""
    top_k = check_top_k(top_k)  # before the file is read
    trained = read_trained(path, GRAPHS, "an export's prediction")
    if trained.normalization.get("text"):  # a text run's export: each file's lines
        return export_texts(trained, images, top_k)
    if trained.table:
        raise table_model_error(path)
    if trained.takes_tensors:  # your own data's inputs: each .npy / .pt file's items
        return answer_tensor_files(trained, [Path(p) for p in images], top_k)
    channels, height, width = trained.image_shape
    files, mode = [Path(p) for p in images], mode_for_channels(channels)
    outputs = graph_runner(trained)(decode_files(files, mode, (height, width)))
    task = task_of(trained.config, trained.table)
    answers = task.answers(outputs, trained.classes, top_k)
    return answered_files(task, trained.classes, answers, files, mode=mode, size=(height, width))


def answer_tensor_files(trained: Trained, files: list[Path], top_k: int) -> Answers:
    """An export of a run on your own data's inputs, asked with `.npy` / `.pt` files of them."""
    from tocha.inference.tensors import answered_tensor_files

    task, run, shape = task_of(trained.config, trained.table), graph_runner(trained), trained.input_shape

    def refused(path: Path) -> None:
        raise TochaError(f"{path}: this export takes {shape} inputs as .npy or .pt files")

    return answered_tensor_files(
        files, shape, trained.normalization.get("integer") is True, task, trained.classes,
        lambda batch: task.answers(run(batch.reshape(len(batch), *shape).numpy()), trained.classes, top_k),
        refused,
    )  # fmt: skip


def answer_onnx_rows(path: str | Path, rows: str | Path, top_k: int = 3) -> Answers:
    """Each row of a CSV through an ONNX export of a table model: encoded as the model's training
    rows were (the table record in the file's metadata), answered by its task."""
    top_k = check_top_k(top_k)  # before the file is read
    trained = read_trained(path, GRAPHS, "an export's prediction")
    if trained.normalization.get("text"):  # a text run's export: the CSV's text column
        return export_texts(trained, [rows], top_k)
    if not trained.table:
        raise TochaError(f"{rows}: {path} was trained on images; give it image files")
    if trained.table.get("series"):  # a forecast: from the file's last rows
        from tocha.data.series import answered_forecast, forecast_input

        task = task_of(trained.config, trained.table)
        outputs = graph_runner(trained)(forecast_input(trained.table, rows).reshape(1, -1))
        return answered_forecast(task, trained.classes, task.answers(outputs, trained.classes, top_k), rows,
                                 trained.table)  # fmt: skip
    x, table, adjusted = encode_file(trained.table, rows)
    outputs = graph_runner(trained)(x)
    task = task_of(trained.config, trained.table)
    answers = task.answers(outputs, trained.classes, top_k)
    return answered_rows(
        task,
        trained.classes,
        answers,
        table,
        adjusted=adjusted,
        record=trained.table,
        dropped=trained.config.data.drop,
    )


def predict_onnx(path: str | Path, images: list[str | Path], top_k: int = 3) -> list[dict[str, object]]:
    """For each image file: its answer (a classifier's top-k classes, most probable first)."""
    return answer_onnx(path, images, top_k).items


def export_texts(trained: Trained, sources: list[str | Path], top_k: int) -> Answers:
    from tocha.inference.text_inputs import answer_export_texts

    task = task_of(trained.config, trained.table)
    return answer_export_texts(trained, sources, graph_runner(trained), task, top_k)
