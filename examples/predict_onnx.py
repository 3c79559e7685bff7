"""Classify image files with a model exported by `tocha export --format onnx`: no torch, no tocha.

    pip install onnxruntime numpy pillow
    python predict_onnx.py model.onnx photo.png [more.png ...]

The file says what it needs (its metadata): class names and the image size and channels. The graph
normalises the images itself, so they go in as uint8 (N, C, H, W), decoded as tocha decodes them.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def decode(path, channels, height, width):
    im = Image.open(path)
    if im.mode == "P":  # the palette's colours, a transparent entry as alpha
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode.startswith("I;16") or im.mode == "I":  # 16-bit gray: keep the high byte
        im = Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA"):  # composite onto black
        arr = np.asarray(im.convert("RGBA" if im.mode == "PA" else im.mode), dtype=np.uint16)
        blended = ((arr[..., :-1] * arr[..., -1:] + 127) // 255).astype(np.uint8)
        im = Image.fromarray(blended[..., 0] if im.mode == "LA" else blended)
    im = im.convert("L" if channels == 1 else "RGB")
    if im.size != (width, height):
        im = im.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
classes, (channels, height, width) = json.loads(meta["classes"]), json.loads(meta["image_shape"])
images = np.stack([decode(path, channels, height, width) for path in sys.argv[2:]])
logits = session.run(["logits"], {"images": images})[0]
probs = np.exp(logits - logits.max(axis=1, keepdims=True))
probs /= probs.sum(axis=1, keepdims=True)
for path, row in zip(sys.argv[2:], probs, strict=True):
    best = np.argsort(-row, kind="stable")[:3]
    print(f"{path}: " + ", ".join(f"{classes[i]} {100 * row[i]:.1f}%" for i in best))
