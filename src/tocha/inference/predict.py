"""`tocha predict`: image files (or their bytes) or a table's rows -> the task's answers (a
classifier's top-k classes with probabilities, a regression's values), preprocessed exactly as in
training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tocha.data.answered import answered_files, answered_rows
from tocha.data.series import answered_forecast, forecast_input
from tocha.devices import resolve_device
from tocha.errors import TochaError, table_model_error
from tocha.inference.inputs import decode_bytes, decode_paths, image_mode
from tocha.inference.model import InferenceModel, load_inference_model
from tocha.inference.table_rows import encode_rows
from tocha.inference.tensors import answered_tensor_files
from tocha.inference.text_inputs import answered_texts, sources_inputs
from tocha.tasks import Answers, check_top_k


def load_for_model(paths: list[Path], model: InferenceModel) -> torch.Tensor:
    """Decode files exactly like training data: same mode (L/RGB), same size, uint8 (N, C, H, W).
    Every unreadable file is named in the one error."""
    model.check_takes_pixels()
    return decode_paths([Path(p) for p in paths], model.image_shape)  # type: ignore[arg-type]


def decode_for_model(data: bytes, model: InferenceModel, name: str = "<bytes>") -> torch.Tensor:
    """One image file's bytes (an upload, say), decoded as `load_for_model` decodes files: (1, C, H, W)."""
    model.check_takes_pixels()
    return decode_bytes(data, model.image_shape, name)  # type: ignore[arg-type]


def ranked_classes(model: InferenceModel, images: torch.Tensor, k: int) -> list[Any]:
    """For each uint8 image, a classifier's k most probable classes (name, index, probability), best
    first: its task's answers."""
    return model.answers(images, k)


def answer_files(
    run_or_file: str | Path,
    paths: list[str | Path],
    top_k: int = 3,
    device: str = "cpu",
    *,
    model_file: str | Path | None = None,
    trust_code: bool = False,
) -> Answers:
    """Each image file's answer (a classifier's top-k classes, most probable first) beside its path."""
    top_k = check_top_k(top_k)  # before the model is loaded
    model = load_inference_model(
        run_or_file, resolve_device(device), model_file=model_file, trust_code=trust_code
    )
    if model.table is not None:
        raise table_model_error(run_or_file)
    if model.normalize.text is not None:  # a text run: each file's lines (or a CSV's text column)
        return answer_text_sources(model, paths, top_k)
    files = [Path(p) for p in paths]
    if model.takes_tensors:  # your own data's inputs: each file's items, answered in order
        return answered_tensor_files(files, model.item_shape, model.normalize.integer, model.task,
                                     model.classes, lambda batch: model.answers(batch, top_k),
                                     lambda _path: model.check_takes_pixels())  # fmt: skip
    answers = model.answers(load_for_model(files, model), top_k)
    shape = model.image_shape
    return answered_files(
        model.task, model.classes, answers, files, mode=image_mode(shape), size=tuple(shape[1:])
    )


def predict_files(
    run_or_file: str | Path, paths: list[str | Path], top_k: int = 3, device: str = "cpu"
) -> list[dict[str, Any]]:
    """For each file: its answer (a classifier's top-k classes, most probable first) beside its path."""
    return answer_files(run_or_file, paths, top_k, device).items


def answer_rows(
    run_or_file: str | Path,
    path: str | Path,
    top_k: int = 3,
    device: str = "cpu",
    *,
    model_file: str | Path | None = None,
    trust_code: bool = False,
) -> Answers:
    """`tocha predict RUN rows.csv`: each row's answer beside its number (from 1)."""
    top_k = check_top_k(top_k)  # before the model is loaded
    model = load_inference_model(
        run_or_file, resolve_device(device), model_file=model_file, trust_code=trust_code
    )
    if model.normalize.text is not None:
        return answer_text_sources(model, [path], top_k)
    if model.table is None:
        raise TochaError(f"{path}: {run_or_file} was trained on images; give it image files")
    if model.table.get("series"):  # a forecast: from the file's last rows
        answers = model.answers(torch.from_numpy(forecast_input(model.table, path)), top_k)
        return answered_forecast(model.task, model.classes, answers, path, model.table)
    x, table, adjusted = encode_rows(model.table, path)
    answers = model.answers(x, top_k)
    return answered_rows(
        model.task,
        model.classes,
        answers,
        table,
        adjusted=adjusted,
        record=model.table,
        dropped=model.config.data.drop,
    )


def answer_text_sources(model: InferenceModel, sources: list[str | Path], top_k: int) -> Answers:
    """A text run's answers for the texts of `sources` (`inference.text_inputs.texts_of`), in order,
    numbered from 1 across them."""
    record = model.normalize.text
    ids, texts, key, cut = sources_inputs(record, sources)
    return answered_texts(model.task, model.classes, model.answers(ids, top_k), texts, key, cut,
                          record["max_length"])  # fmt: skip
