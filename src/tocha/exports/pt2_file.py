"""pt2: `torch.export` of the inference model (TorchScript's successor), loaded by `torch.export.load`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.exports.quiet import quiet_exporter
from tocha.formats import ARCHIVE_METADATA as METADATA_FILE  # read with torch.export.load(extra_files=...)
from tocha.inference.model import InferenceModel, dynamic_dims


def export_bytes(model: InferenceModel, metadata: dict[str, str], example: torch.Tensor) -> bytes:
    """The archive's bytes, saved in memory: torch's writer aborts the interpreter on a full disk,
    where the caller's plain write reports it."""
    with quiet_exporter():
        batch = {"images": dynamic_dims(model)}
        program = torch.export.export(model, (example,), dynamic_shapes=batch)
        buffer = io.BytesIO()
        torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(metadata)})
    return buffer.getvalue()


def load_pt2(path: Path) -> tuple[torch.nn.Module, dict[str, str]]:
    """The exported module and its metadata."""
    extra = {METADATA_FILE: ""}
    with quiet_exporter():
        program = torch.export.load(path, extra_files=extra)
    return program.module(), json.loads(extra[METADATA_FILE] or "{}")


def runner(path: Path, _given: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    module, _ = load_pt2(path)

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(images)).numpy()

    return run
