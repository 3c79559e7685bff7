"""ONNX: `torch.onnx.export(dynamo=True)` of the inference model, run by onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tocha.exports.onnx_predict import io_names, run_graph
from tocha.exports.quiet import quiet_exporter
from tocha.inference.model import InferenceModel, dynamic_dims
from tocha.runs.trained import open_session


def export_bytes(model: InferenceModel, metadata: dict[str, str], example: torch.Tensor) -> bytes:
    """One self-contained .onnx file's bytes: uint8 (batch, C, H, W) images or float (batch, F)
    rows in, outputs out, metadata inside, the weights in the file (one file to hand over)."""
    input_name, output_name = io_names(model.table is not None)
    with quiet_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={"images": dynamic_dims(model)},  # forward's argument
            verbose=False,
        )
    program.model.metadata_props.update(metadata)
    return program.model_proto.SerializeToString()


def runner(path: Path, _given: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    """The file in an onnxruntime session: its inputs (images or rows) -> its outputs."""
    session = open_session(path)
    return lambda inputs: run_graph(session, inputs)
