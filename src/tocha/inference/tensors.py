"""Inputs for a model trained on your own data that is not image bytes (`data.given`: float inputs
passed as given, rows, signals, integer token ids): tensors and arrays of the shape and kind it was
trained on, from Python or from `.npy` / `.pt` files (`tocha predict RUN inputs.npy`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.errors import TochaError, one_line
from tocha.tasks import Answers, Task

TENSOR_FILES = (".npy", ".pt")


def is_tensor_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TENSOR_FILES


def read_tensor_file(path: str | Path) -> torch.Tensor:
    """The tensor a `.npy` (NumPy's format, no pickled objects) or `.pt` file (`torch.save` of one
    tensor, loaded with `weights_only`: no code runs) holds."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return torch.from_numpy(np.load(path, allow_pickle=False))
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError) as e:
        raise TochaError(f"{path}: cannot read it as a {path.suffix} tensor file: {one_line(e)}") from e
    except Exception as e:  # a pickle naming something weights_only refuses
        raise TochaError(f"{path}: not a tensor file tocha reads ({one_line(e)})") from e
    if not isinstance(value, torch.Tensor):
        raise TochaError(f"{path} holds a {type(value).__name__}, not one tensor (torch.save(x, path))")
    return value


def given_batch(inputs: object, item_shape: tuple[int, ...], integer: bool) -> torch.Tensor:
    """`inputs` (one item of `item_shape`, or a batch of them: a tensor, an array, or a list of
    them) as the model's batch, held as training held them (`data.given.inputs_of`)."""
    from tocha.data.given import inputs_of

    items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if not items:
        raise TochaError("no inputs to predict")
    try:
        tensors = [torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in items]
    except Exception as e:
        raise TochaError(f"predict takes tensors or arrays of {item_shape}: {one_line(e)}") from e
    batch = torch.cat([t[None] if tuple(t.shape) == item_shape else t for t in tensors])
    if tuple(batch.shape[1:]) != item_shape or len(batch) == 0:
        raise TochaError(
            f"the model takes inputs of {item_shape} (one) or (N, {', '.join(map(str, item_shape))}), "
            f"got {tuple(batch.shape)}"
        )
    if integer and (batch.is_floating_point() or batch.dtype == torch.bool):
        raise TochaError(f"the model takes integer inputs (token ids), got {batch.dtype}")
    if not integer:
        if batch.dtype == torch.bool or batch.is_complex():
            raise TochaError(f"the model takes numbers, got {batch.dtype}")
        batch = batch.float()
    return inputs_of(batch, "input", "predict")


def answered_tensor_files(files: list[Path], shape: tuple[int, ...], integer: bool, task: Task,
                          classes: list[str], answer: Callable[[torch.Tensor], list[Any]],
                          not_tensors: Callable[[Path], None]) -> Answers:  # fmt: skip
    """Each `.npy` / `.pt` file's items (one input of `shape`, or a batch of them) answered by
    `answer` (a batch -> the task's answers), named `FILE` or `FILE[i]`; a file of another kind is
    `not_tensors`' to refuse."""
    items, key = [], task.answer_key(classes)
    for path in files:
        if not is_tensor_file(path):
            not_tensors(path)
        answers = answer(given_batch([read_tensor_file(path)], shape, integer))
        names = [str(path)] if len(answers) == 1 else [f"{path}[{i}]" for i in range(len(answers))]
        items += [{"path": name, key: a} for name, a in zip(names, answers, strict=True)]
    return Answers(task, classes, items)
