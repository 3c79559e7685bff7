"""`tocha predict model.onnx IMAGE...`: predictions through onnxruntime, without importing torch.

The images are decoded by the same code as training data (`tocha.data.images`, Pillow and NumPy
only), to the size and mode stored in the file's metadata; the graph itself normalises them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tocha.data.images import load_image, unreadable_lines
from tocha.errors import TochaError
from tocha.exports.metadata import read_metadata

INPUT_NAME, OUTPUT_NAME = "images", "logits"


def open_session(path: Path):  # noqa: ANN201 - onnxruntime's type, imported lazily
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_onnx_metadata(path: Path) -> dict:
    try:
        session = open_session(path)
    except Exception as e:  # onnxruntime raises its own types for a damaged or foreign file
        raise TochaError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from e
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    if meta.get("format") != "tocha-export":
        raise TochaError(f"{path}: an ONNX model without tocha's metadata (classes, image size)")
    return {"session": session, **meta}


def predict_onnx(path: str | Path, images: list[str | Path], top_k: int = 3) -> list[dict[str, object]]:
    """For each image file: its top-k classes (name, index, probability), most probable first."""
    if top_k < 1:
        raise TochaError("--top-k must be at least 1")
    meta = read_onnx_metadata(Path(path))
    channels, height, width = meta["image_shape"]
    mode = {1: "L", 3: "RGB"}[channels]
    batch, bad = [], []
    for image in images:
        try:
            batch.append(load_image(Path(image), mode, (height, width)))
        except TochaError as e:
            bad.append(e)
    if len(bad) == 1:
        raise bad[0]
    if bad:
        lines = unreadable_lines(bad)
        raise TochaError(f"{len(bad)} of the {len(images)} image files are not readable:\n{lines}")
    logits = meta["session"].run([OUTPUT_NAME], {INPUT_NAME: np.stack(batch)})[0].astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    classes = meta["classes"]
    results = []
    for image, row in zip(images, probs, strict=True):
        best = np.argsort(-row, kind="stable")[: min(top_k, len(classes))]
        top = [{"class": classes[i], "index": int(i), "probability": float(row[i])} for i in best]
        results.append({"path": str(image), "top": top})
    return results
