"""`tocha evaluate`: a trained model on a dataset's test split -> its task's metrics, report and
figures (classification: loss, accuracy, per-class report, confusion matrix, the confidently wrong
images; regression: MSE, RMSE, MAE, R² and predicted-against-true)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tocha.data.code import data_of_code, is_data_code
from tocha.data.given import given_name, is_given, load_given
from tocha.data.load import load_configured
from tocha.data.tables import is_table_path
from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.files import atomic_write_text
from tocha.formats import WITH_WEIGHTS
from tocha.inference.model import inference_model
from tocha.inference.table_rows import encode_rows, target_labels
from tocha.memory import device_available_bytes
from tocha.models.architecture import Architecture
from tocha.models.user_names import model_label
from tocha.runs.trained import read_trained
from tocha.tasks import Evaluation, Task


@dataclass
class EvaluateResult:
    evaluation: Evaluation  # the task's metrics of the split
    classes: list[str]
    dataset: str
    out_dir: Path
    task: Task  # what the numbers mean: `task.headline(evaluation)`, `task.report_text(...)`
    split: str = "test split"  # which rows: a dataset's test split, or "every row" of a table file


def evaluate_checkpoint(
    run_or_checkpoint: str | Path,
    data: Any = None,
    data_dir: str | None = None,
    device: str = "auto",
    *,
    out_dir: str | Path | None = None,
    batch_size: int = 1000,
    allow_other_classes: bool = False,
    model_file: str | Path | None = None,
    given: Any = None,
    trust_code: bool = False,
    loss: Any = None,
) -> EvaluateResult:
    """Evaluate on the test split of `data` (default: the dataset it was trained on; your own data
    given in Python, `data.given`, as training took it); a table model given another table file is
    scored on all of that file's rows, encoded as in training.
    `model_file`, `given`: a user's model's code instead of the recorded file, or its Python object;
    `trust_code`: run the recorded code though no run of this machine recorded it; `loss`: for a run
    trained with a loss given in Python, that loss (else its loss is not scored: NaN)."""
    trained = read_trained(
        run_or_checkpoint, WITH_WEIGHTS, "tocha evaluate", model_file, trust_code=trust_code
    )
    model = inference_model(trained, resolve_device(device), given)
    if loss is not None:
        model.task.with_loss(loss.to(model.device) if isinstance(loss, torch.nn.Module) else loss)
    cfg = model.config
    name = given_name(data) if is_given(data) else (data or cfg.data.name)
    if not is_given(data) and is_data_code(name):  # your data's code: named now, or as the run recorded it
        data = data_of_code(cfg.data, data, trust_code)
    if model.table is not None and isinstance(data, str) and is_table_path(data):
        rows, table, _ = encode_rows(model.table, data)
        labels = target_labels(model.table, model.task, model.classes, table)
        images, labels, shown = rows.to(model.device), labels.to(model.device), data
        split = "every row"
    else:
        # The test split only: a validation carve (of the training split) plays no part here, except
        # for text, whose vocabulary is the training texts' once the carve left (the same ids again).
        text = model.normalize.text
        test_only = cfg.data if text is not None else dataclasses.replace(cfg.data, val_fraction=0)
        if is_given(data):  # your own data, given in Python again: its test split, as training split it
            dataset = load_given(data, test_only, name, log=None, seed=cfg.train.seed)
        else:
            dataset = load_configured(test_only, name, data_dir, download=True)
        if text is not None and (dataset.text or {}).get("vocab") != text["vocab"]:
            raise TochaError(f"{name}'s training texts make another vocabulary than the run's: the data "
                             "changed since it trained; answer its texts with tocha predict")  # fmt: skip
        if dataset.image_shape != model.image_shape or len(dataset.classes) != len(model.classes):
            raise TochaError(
                f"{name} has inputs {dataset.image_shape} and {len(dataset.classes)} classes; the model was "
                f"trained on {model.image_shape} with {len(model.classes)} classes"
            )
        if dataset.classes != model.classes and not allow_other_classes:
            shown = lambda names: ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")  # noqa: E731
            raise TochaError(
                f"{name}'s classes ({shown(dataset.classes)}) are not the model's "
                f"({shown(model.classes)}); --allow-other-classes evaluates it anyway, "
                "class by class in order, under the model's names"
            )
        test = dataset.test.to(model.device)
        images, labels, shown = test.images, test.labels, dataset.name
        split = "test split"
    Architecture(
        cfg.model,
        model.image_shape,
        model.task.output_size(model.classes),  # type: ignore[arg-type]
        rows=model.normalize.rows,
        given=model.model,
        signal=tuple(model.normalize.shape) if model.normalize.shape else None,
        integer=model.normalize.integer,
    ).check_activations_fit(device_available_bytes(model.device), eval_batch=batch_size)
    evaluation = model.task.evaluate(model.logits(images, batch_size), labels)
    target = Path(out_dir) if out_dir else trained.folder.eval_dir(Path(shown).name)  # type: ignore[union-attr]
    # images to show: pixels (a table's rows are not, nor floats given in Python as they are)
    pictures = images if model.table is None and images.dtype == torch.uint8 else None
    title = f"{model_label(cfg.model.name)} on {Path(shown).name}"
    report = {
        "dataset": shown,
        "split": split,
        **model.task.report(evaluation, model.classes, target, title, images=pictures),
    }
    atomic_write_text(target / "evaluation.json", json.dumps(report, indent=2) + "\n")
    return EvaluateResult(evaluation, model.classes, shown, target, model.task, split)
