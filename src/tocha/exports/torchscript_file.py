"""TorchScript: `torch.jit.trace` of the inference model, loaded by `torch.jit.load` in Python and by
`torch::jit::load` in C++ (LibTorch), the deployment format the course notes name.

PyTorch deprecates TorchScript in favour of `torch.export` (tocha's `pt2`), and says so on every
call: the warnings are kept out of tocha's output here, and the guide says which to pick. Tracing
records the operations one example batch runs (the batch axis stays free; a forward that branches
on its inputs' values is caught by the parity check). The example inputs are not stored in the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.formats import ARCHIVE_METADATA
from tocha.inference.model import InferenceModel


@contextlib.contextmanager
def without_deprecation() -> Iterator[None]:
    """torch.jit's own DeprecationWarnings (and the tracer's notes on Python values), not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def export_bytes(model: InferenceModel, metadata: dict[str, str], example: torch.Tensor) -> bytes:
    """The archive's bytes (uint8 images or float rows in, outputs out, the record as an extra file),
    saved in memory: the caller's plain write reports a full disk."""
    with without_deprecation(), torch.no_grad():
        traced = torch.jit.trace(model.eval(), (example,), check_trace=False, _store_inputs=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={ARCHIVE_METADATA: json.dumps(metadata)})
    return buffer.getvalue()


def runner(path: Path, _given: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    """The file loaded by `torch.jit.load`: its inputs (images or rows) -> its outputs."""
    with without_deprecation():
        module = torch.jit.load(str(path), map_location="cpu")

    def run(inputs: np.ndarray) -> np.ndarray:
        with without_deprecation(), torch.inference_mode():
            return module(torch.from_numpy(inputs)).numpy()

    return run
