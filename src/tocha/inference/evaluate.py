"""`tocha evaluate`: a trained model on a dataset's test split -> loss, accuracy, report, PNG
(regression: MSE, RMSE, MAE, R² and predicted-against-true)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tocha.data.load import load_configured
from tocha.data.tables import is_table_path
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.figures.gallery import plot_confidently_wrong
from tocha.figures.plots import plot_confusion, plot_predictions
from tocha.files import atomic_write_text
from tocha.inference.model import WITH_WEIGHTS, InferenceModel, inference_model
from tocha.runs.trained import read_trained
from tocha.tasks import task_of
from tocha.tasks.metrics import Evaluation, per_class_report


@dataclass
class EvaluateResult:
    evaluation: Any  # analysis.metrics.Evaluation, or tasks.regression.RegressionEvaluation
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
    allow_other_classes: bool = False,
) -> EvaluateResult:
    """Evaluate on the test split of `data` (default: the dataset it was trained on); a table model
    given another table file is scored on all of that file's rows, encoded as in training."""
    trained = read_trained(run_or_checkpoint, WITH_WEIGHTS, "tocha evaluate")
    model = inference_model(trained, resolve_device(device))
    cfg = model.config
    name = data or cfg.data.name
    if model.table is not None and data and is_table_path(data):
        from tocha.inference.table_rows import encode_rows, table_targets

        rows, table, _ = encode_rows(model, data)
        images, labels, shown = rows.to(model.device), table_targets(model, table).to(model.device), data
    else:
        dataset = load_configured(cfg.data, name, data_dir, download=True)
        if dataset.image_shape != model.image_shape or len(dataset.classes) != len(model.classes):
            raise TochaError(
                f"{name} has inputs {dataset.image_shape} and {len(dataset.classes)} classes; the model was "
                f"trained on {model.image_shape} with {len(model.classes)} classes"
            )
        if dataset.classes != model.classes and not allow_other_classes:
            shown = lambda names: ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")  # noqa: E731
            raise TochaError(f"{name}'s classes ({shown(dataset.classes)}) are not the model's "
                             f"({shown(model.classes)}); --allow-other-classes evaluates it anyway, "
                             "class by class in order, under the model's names")  # fmt: skip
        test = dataset.test.to(model.device)
        images, labels, shown = test.images, test.labels, dataset.name
    outputs = model.logits(images, batch_size)
    evaluation = task_of(cfg, model.table).evaluate(outputs, labels)
    target = Path(out_dir) if out_dir else trained.folder.eval_dir(Path(shown).name)  # type: ignore[union-attr]
    title = f"{cfg.model.name} on {Path(shown).name}"
    if model.is_regression:
        plot_predictions(evaluation, target / "predictions.png", f"{title}: {evaluation.headline()}",
                         model.classes[0])  # fmt: skip
        report = {"dataset": shown, "samples": evaluation.samples, **evaluation.metrics()}
    else:
        report = classification_report(evaluation, model, images, labels, outputs, target, title, shown)
    atomic_write_text(target / "evaluation.json", json.dumps(report, indent=2) + "\n")
    return EvaluateResult(evaluation, model.classes, shown, target)


def classification_report(evaluation: Evaluation, model: InferenceModel, images: torch.Tensor,
                          labels: torch.Tensor, outputs: torch.Tensor, target: Path, title: str,
                          shown: str) -> dict[str, Any]:  # fmt: skip
    """The confusion matrix (PNG), per-class figures, and for images the confidently wrong ones."""
    plot_confusion(evaluation.confusion, model.classes, target / "confusion_matrix.png",
                   f"{title}: accuracy {100 * evaluation.accuracy:.2f}%")  # fmt: skip
    report: dict[str, Any] = {
        "dataset": shown,
        "samples": evaluation.samples,
        "loss": evaluation.loss,
        "accuracy": evaluation.accuracy,
        "macro_f1": evaluation.macro_f1,  # every figure `tocha evaluate` prints is kept here
        "confusion_matrix": evaluation.confusion.tolist(),
        "per_class": [vars(r) for r in per_class_report(evaluation.confusion, model.classes)],
    }
    if model.table is None:  # the test images the model got wrong with the most confidence: look there first
        wrong = plot_confidently_wrong(images.cpu(), outputs.cpu(), labels.cpu(), model.classes,
                                       target / "confidently_wrong.png")  # fmt: skip
        report["confidently_wrong"] = [
            {"index": i, "predicted": p, "probability": prob} for i, p, prob in wrong
        ]
    return report
