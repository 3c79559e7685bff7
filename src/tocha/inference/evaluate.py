"""`tocha evaluate`: a trained model on a dataset's test split -> loss, accuracy, report, PNG."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tocha.analysis.gallery import plot_confidently_wrong
from tocha.analysis.metrics import Evaluation, per_class_report
from tocha.analysis.plots import plot_confusion
from tocha.data.load import load_configured
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.files import atomic_write_text
from tocha.inference.model import load_inference_model
from tocha.runs import RunFolder
from tocha.tasks import make_task


@dataclass
class EvaluateResult:
    evaluation: Evaluation
    classes: list[str]
    dataset: str
    out_dir: Path


def evaluate_checkpoint(
    run_or_checkpoint: str | Path,
    data: str | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    out_dir: str | Path | None = None,
    batch_size: int = 1000,
) -> EvaluateResult:
    """Evaluate on the test split of `data` (default: the dataset it was trained on)."""
    model = load_inference_model(run_or_checkpoint, resolve_device(device))
    cfg = model.config
    name = data or cfg.data.name
    dataset = load_configured(cfg.data, name, data_dir, download=True)
    if dataset.image_shape != model.image_shape or len(dataset.classes) != len(model.classes):
        raise TochaError(
            f"{name} has images {dataset.image_shape} and {len(dataset.classes)} classes; the model was "
            f"trained on {model.image_shape} with {len(model.classes)} classes"
        )
    test = dataset.test.to(model.device)
    outputs = model.logits(test.images, batch_size)
    evaluation = make_task(cfg.train.loss, cfg.train.label_smoothing).evaluate(outputs, test.labels)

    target = Path(out_dir) if out_dir else _default_out(run_or_checkpoint, dataset.name)
    plot_confusion(
        evaluation.confusion,
        model.classes,
        target / "confusion_matrix.png",
        f"{cfg.model.name} on {dataset.name}: accuracy {100 * evaluation.accuracy:.2f}%",
    )
    report = {
        "dataset": dataset.name,
        "samples": evaluation.samples,
        "loss": evaluation.loss,
        "accuracy": evaluation.accuracy,
        "confusion_matrix": evaluation.confusion.tolist(),
        "per_class": [vars(r) for r in per_class_report(evaluation.confusion, model.classes)],
    }
    # The test images the model got wrong with the most confidence: where to look first.
    wrong = plot_confidently_wrong(test.images.cpu(), outputs.cpu(), test.labels.cpu(), model.classes,
                                   target / "confidently_wrong.png")  # fmt: skip
    report["confidently_wrong"] = [{"index": i, "predicted": p, "probability": prob} for i, p, prob in wrong]
    atomic_write_text(target / "evaluation.json", json.dumps(report, indent=2) + "\n")
    return EvaluateResult(evaluation, model.classes, dataset.name, target)


def _default_out(run_or_checkpoint: str | Path, dataset: str) -> Path:
    """`RUN/eval-<dataset>/`, beside the checkpoint."""
    path = Path(run_or_checkpoint)
    return RunFolder(path if path.is_dir() else path.parent).eval_dir(dataset)
