"""`tocha export`: a trained model as a file other programs run, checked against tocha's own outputs.

The formats, one artefact: the `InferenceModel` (normalisation + model + flip TTA), which takes
uint8 images (N, C, H, W) and returns logits, in float32. Each format is a row of `tocha.formats`
and a module here that writes and runs it:

- `onnx` (`onnx_file`): `torch.onnx.export(dynamo=True)`, one self-contained file with a dynamic
  batch axis, run by onnxruntime (no torch needed: see `tocha.exports.onnx_predict`).
- `pt2` (`pt2_file`): `torch.export`, loaded with `torch.export.load(path).module()`.
- `torchscript` (`torchscript_file`): `torch.jit.trace`, loaded with `torch.jit.load` in Python and
  `torch::jit::load` in C++ (LibTorch); deprecated by PyTorch in favour of pt2.
- `safetensors` (`safetensors_file`): the model's weights with the config, classes and
  normalisation as metadata.

Every export is run in its own runtime on the run's whole test split and compared with tocha's model
before it is kept (`parity`); a failed check keeps nothing.
"""

from typing import Any

__all__ = ["ExportResult", "export_model"]


def __getattr__(name: str) -> Any:
    # Lazy: `tocha predict model.onnx` reaches onnx_predict through this package without torch.
    if name in __all__:
        from tocha.exports import run

        return getattr(run, name)
    raise AttributeError(name)
