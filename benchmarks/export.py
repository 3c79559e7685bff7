"""Export: time, file size and parity per model and format; predictions per second through torch, pt2
and onnxruntime; and the cold start of a prediction with and without torch.

    python benchmarks/export.py [--data fashion-mnist] [--data-dir ../shared/data] [--repeats 5]

Each registered model is trained for one epoch on `--data` (full Fashion-MNIST by default: parity
is checked on its 10,000 test images), then exported in every format. Throughput: images per
second of the model's forward pass (preprocessing included, as exported) at batch 1 and 256, the
median of `--repeats` timed passes over 512 images after one warm-up pass, on the CPU with torch's
default threads (onnxruntime with its default threads). Cold start: the wall time of a whole
process predicting one PNG, the median of 3: `tocha predict RUN` (torch), `tocha predict
model.onnx` (onnxruntime, no torch imported) and `python examples/predict_onnx.py` (no tocha).
Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, SHARED_DATA, emit, machine, train_quietly
from PIL import Image

from tocha.exports import export_model
from tocha.exports.pt2_file import load_pt2
from tocha.formats import EXPORTS
from tocha.inference.model import load_inference_model
from tocha.runs.trained import open_session

MODELS = {"linear": {}, "mlp": {}, "tinyvgg": {}, "resnet": {"model.widths": [16, 32, 64, 128]}}


def images_per_second(run, images: np.ndarray, batch: int, repeats: int) -> float:
    """Median images/s of `run` (uint8 batch -> logits) over `images` in batches of `batch`."""

    def one_pass() -> float:
        started = time.perf_counter()
        for i in range(0, len(images), batch):
            run(images[i : i + batch])
        return len(images) / (time.perf_counter() - started)

    one_pass()  # warm-up: first-call allocations, lazy initialisation
    return statistics.median(one_pass() for _ in range(repeats))


def runners(run_dir: Path, paths: dict[str, Path]) -> dict[str, object]:
    model = load_inference_model(run_dir, torch.device("cpu"))
    model.amp_dtype = None
    pt2, _ = load_pt2(paths["pt2"])
    session = open_session(paths["onnx"])

    def torch_run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    def pt2_run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return pt2(torch.from_numpy(x)).numpy()

    def onnx_run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"images": x})[0]

    return {"torch": torch_run, "pt2": pt2_run, "onnxruntime": onnx_run}


def cold_start(command: list[str]) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    emit({"benchmark": "export", **machine()})
    out = Path(tempfile.mkdtemp())
    for name, options in MODELS.items():
        settings = {"data.name": args.data, "model.name": name, "train.epochs": 1, **options}
        run = train_quietly(settings, args.data_dir, out / name)
        paths = {}
        for fmt in EXPORTS:
            result = export_model(run.run_dir, fmt, log=lambda _line: None)
            paths[fmt] = result.path
            p = result.parity
            emit({"model": name, "format": fmt, "export_seconds": round(result.export_seconds, 2),
                  "bytes": result.bytes, "max_abs_diff": p.max_abs_diff, "top1_agreement": p.top1_agreement,
                  "ties": p.ties, "test_images": p.samples, "accuracy": p.accuracy,
                  "tocha_accuracy": p.reference_accuracy})  # fmt: skip
        images = run.data.test.images[:512].numpy()
        for runtime, fn in runners(run.run_dir, paths).items():
            for batch in (1, 256):
                speed = images_per_second(fn, images, batch, args.repeats)
                emit({"model": name, "runtime": runtime, "batch": batch, "images_per_second": round(speed)})
        if name == "tinyvgg":
            png = out / "image.png"
            Image.fromarray(run.data.test.images[0, 0].numpy()).save(png)
            tocha = [sys.executable, "-m", "tocha", "predict"]
            script = [sys.executable, str(REPO / "examples" / "predict_onnx.py")]
            commands = {
                "tocha predict RUN (torch)": [*tocha, str(run.run_dir), str(png)],
                "tocha predict model.onnx": [*tocha, str(paths["onnx"]), str(png)],
                "examples/predict_onnx.py": [*script, str(paths["onnx"]), str(png)],
            }
            emit({"cold_start_seconds": {k: round(cold_start(c), 2) for k, c in commands.items()}})


if __name__ == "__main__":
    main()
