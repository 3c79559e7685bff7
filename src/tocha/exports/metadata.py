"""What every exported file says about itself: classes, input, normalisation, provenance.

Stored as string key/values (ONNX `metadata_props`, safetensors metadata, a JSON file inside the
.pt2 archive), so any runtime can read it without tocha; `runs.trained` reads it back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tocha.config import to_dict
from tocha.models.user_names import model_label
from tocha.runs.trained import EXPORT_FORMAT
from tocha.version import __version__

if TYPE_CHECKING:  # not imported at run time: reading metadata must not need torch
    from tocha.inference.model import InferenceModel

INPUT = "uint8 images (N, C, H, W), 0..255, decoded as tocha decodes image files"
TABLE_INPUT = (
    "float32 table rows (N, F): the columns named in table.features, in that order, as in the "
    "CSV (not standardised); a text column one-hot, one column per category"
)


def export_metadata(model: InferenceModel, test_score: float | None) -> dict[str, str]:
    """The metadata of an export of `model`, every value a string (JSON where structured); what its
    output means is its task's to say (`test_<primary metric>`, `output`)."""
    assert model.config is not None and model.image_shape is not None
    norm = model.normalize
    values: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "tocha_version": __version__,
        "model": model_label(model.config.model.name),
        "dataset": model.config.data.name,
        "classes": model.classes,
        "image_shape": list(model.image_shape),
        "normalization": norm.to_dict(),
        "tta_flip": model.tta_flip,
        "task": model.task.name,
        f"test_{model.task.primary}": test_score,
        "epoch": model.epoch,
        "input": INPUT if model.table is None else TABLE_INPUT,
        "output": model.task.output_words(),
        "table": model.table,
        "config": to_dict(model.config),
    }
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
