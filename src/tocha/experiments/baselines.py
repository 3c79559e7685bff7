"""scikit-learn baselines on exactly the train/validation/test split a tocha run uses.

They answer "is my network any better than a classic model?": every baseline sees the same images
(flattened, scaled to 0..1), or the same table rows (standardised as tocha standardises them), is
fitted on the training rows only, and is scored on the validation split (what compare ranks on)
and the full test split (regression: MSE, RMSE, MAE, R² in the target's units).
Estimators that scale badly with the number of training images (a kernel SVM is O(N^2) in memory
and worse in time) train on a seeded, stratified subsample, and the result records how many images
were used so no report hides it.

scikit-learn is an optional dependency (`pip install 'tocha[sklearn]'`) imported only when a
baseline runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tocha.data.tensorset import LoadedData
from tocha.data.text import columns_of
from tocha.errors import TochaError
from tocha.experiments.baseline_estimators import (
    _FORECAST_SPECS,
    _REGRESSION_SPECS,
    _SPECS,
    _TEXT_SPECS,
    LastValues,
    _require_sklearn,
    _Spec,
    beside_columns,
)
from tocha.tasks import ClassificationTask, ForecastTask, RegressionTask

Featurize = Callable[[torch.Tensor], np.ndarray]  # uint8 images -> what a baseline is fitted on


@dataclass
class BaselineResult:
    """One baseline's score on the full test split, and what it took to get there."""

    name: str
    description: str
    accuracy: float | None  # a classifier's correct / total on the full test split (None otherwise)
    fit_seconds: float
    predict_seconds: float
    train_samples: int  # images actually used for fitting (fewer than the split when capped)
    params: dict[str, Any]  # the estimator's key settings
    notes: list[str] = field(default_factory=list)  # e.g. stopped before converging
    metrics: dict[str, float] = field(default_factory=dict)  # the task's test metrics, by their names
    val_metrics: dict[str, float] = field(default_factory=dict)  # the same on validation ({}: none)


def classification_scores(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float]]:
    """Accuracy (correct / total), as tocha's classification task computes it."""
    accuracy = int((predictions == labels).sum()) / len(labels)
    return accuracy, {"accuracy": accuracy}


def regression_scores(predictions: np.ndarray, targets: np.ndarray) -> tuple[None, dict[str, float]]:
    return None, regression_metrics(predictions, targets)


# The tasks that have baselines: their estimators, and how their predictions are scored.
BASELINES: dict[str, tuple[dict[str, _Spec], Callable[[np.ndarray, np.ndarray], tuple]]] = {
    ClassificationTask.name: (_SPECS, classification_scores),
    RegressionTask.name: (_REGRESSION_SPECS, regression_scores),
    ForecastTask.name: (_FORECAST_SPECS, regression_scores),
}


def _spec(name: str, task: str = ClassificationTask.name, text: bool = False) -> _Spec:
    if task not in BASELINES:
        raise TochaError(f"there are no scikit-learn baselines for a {task} task; leave out --baselines")
    specs = _TEXT_SPECS if text and task == ClassificationTask.name else BASELINES[task][0]
    if name not in specs:
        kind = "text" if text else task
        raise TochaError(f"unknown {kind} baseline {name!r}; valid names: {', '.join(specs)}")
    return specs[name]


def default_max_train(name: str) -> int | None:
    """The cap on training images `name` uses when none is given (None: no cap)."""
    return _spec(name).max_train


def build_estimator(name: str, seed: int = 0, task: str = ClassificationTask.name) -> Any:
    """The unfitted scikit-learn estimator behind baseline `name`; a regressor learns the target
    standardised, as tocha's regression task does."""
    spec = _spec(name, task)
    _require_sklearn()
    if task != RegressionTask.name:
        return spec.build(seed)
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    return TransformedTargetRegressor(regressor=spec.build(seed), transformer=StandardScaler())


def features(data: LoadedData, images: torch.Tensor) -> np.ndarray:
    """What a baseline sees: pixels in 0..1, a table's rows standardised as tocha standardises them,
    or a text's token ids written as words (padding left out)."""
    if data.details.get("series"):  # the windows in the series' own units, the target's first
        return images.reshape(len(images), -1).numpy()
    if data.text is not None:
        return text_features(data, images.reshape(len(images), -1).numpy())
    if data.table is None:
        return image_features(images)
    from tocha.data.table_set import feature_stats

    mean, std = (np.array(v, dtype=np.float32) for v in feature_stats(data))
    return (images.reshape(len(images), -1).numpy() - mean) / std


def text_features(data: LoadedData, flat: np.ndarray) -> np.ndarray:
    """A text's token ids written as words ("12 7 31", padding left out); beside table columns,
    rows (N, 1 + F) of that text and the columns standardised as tocha standardises them."""
    columns = columns_of(data.text)
    ids = flat[:, columns:].astype(np.int64)
    texts = np.array([" ".join(map(str, row[row != 0])) for row in ids])
    if not columns:
        return texts
    stats = data.details["input_stats"]
    mean, std = (np.array(stats[k][:columns], dtype=np.float32) for k in ("mean", "std"))  # type: ignore[index]
    rows = np.empty((len(flat), 1 + columns), dtype=object)
    rows[:, 0], rows[:, 1:] = texts, (flat[:, :columns] - mean) / std
    return rows


def regression_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (1 - SSE / SST), as tocha's regression task computes them."""
    error = predictions.astype(np.float64) - targets
    mse, total = float((error**2).mean()), float(((targets - targets.mean()) ** 2).sum())
    return {"mse": mse, "rmse": mse**0.5, "mae": float(np.abs(error).mean()),
            "r2": 1 - float((error**2).sum()) / total if total > 0 else float("nan")}  # fmt: skip


def image_features(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, C, H, W) -> float32 (N, C*H*W) in 0..1: the features every baseline sees."""
    flat = images.reshape(len(images), -1).numpy()
    return flat.astype(np.float32) / np.float32(255)


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of `n` samples drawn with each class's share kept (seeded).

    Every class present gets at least one sample when n allows it, so a small cap never drops a
    class silently. n >= len(labels) returns every index.
    """
    y = labels.numpy()
    if n >= len(y):
        return np.arange(len(y))
    if n < 1:
        raise TochaError(f"max_train must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    take = _allocate(counts, n)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split n over classes in proportion to `counts` (largest remainder), at least 1 each if n allows."""
    exact = counts * n / counts.sum()
    take = np.floor(exact).astype(int)
    if n >= len(counts):
        take = np.maximum(take, 1)
    # Hand out the rest where rounding down lost most; take back where raising to 1 gave most.
    while take.sum() < n:
        take[np.argmax(np.where(take < counts, exact - take, -np.inf))] += 1
    while take.sum() > n:
        take[np.argmin(np.where(take > 1, exact - take, np.inf))] -= 1
    return take


def _check(data: LoadedData, train_idx: np.ndarray) -> None:
    if len(data.test) == 0:
        raise TochaError(f"{data.name}: the test split is empty; a baseline needs test images to score")
    if len(np.unique(data.train.labels.numpy()[train_idx])) < 2:
        raise TochaError(f"{data.name}: a baseline needs training images of at least two classes")


def _fit(estimator: Any, x: np.ndarray, y: np.ndarray) -> list[str]:
    """Fit, turning convergence warnings into notes: the result should say so, not stderr."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x, y)
    for w in caught:  # record=True captured every warning: pass the others on unchanged
        if w.category is not ConvergenceWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    # The first line says what happened; the rest is sklearn's generic advice.
    notes = sorted(
        {str(w.message).split("\n")[0].rstrip(" :") for w in caught if w.category is ConvergenceWarning}
    )
    return [f"not converged: {n}" for n in notes]


def run_baseline(name: str, data: LoadedData, seed: int = 0, max_train: int | None = None,
                 featurize: Featurize | None = None) -> BaselineResult:  # fmt: skip
    """Fit baseline `name` on data.train (capped at `max_train`, default the baseline's own cap) and
    score it on all of data.test. `featurize`: uint8 images -> a pretrained backbone's features,
    for a baseline fitted on them (`linear_probe`)."""
    spec = _spec(name, data.task, data.text is not None)
    if spec.pretrained and featurize is None:
        raise TochaError(f"the {name} baseline fits a pretrained backbone's features: give --pretrained")
    seen = featurize if spec.pretrained else (lambda images: features(data, images))
    estimator = spec.build(seed) if data.text is not None else build_estimator(name, seed, data.task)
    if columns_of(data.text):  # its features: the text's, and the columns beside it
        estimator = beside_columns(estimator)
    if series := data.details.get("series"):  # the naive forecasts read the window they are given
        season = data.details.get("season")
        if name == "seasonal_naive" and not (season and season <= series["window"]):  # type: ignore[operator]
            raise TochaError(
                f"the seasonal_naive baseline needs --season S, at most the window {series['window']}"
            )
        if isinstance(estimator, LastValues):
            estimator.window, estimator.season = (
                series["window"],
                season if name == "seasonal_naive" else None,
            )
    cap = spec.max_train if max_train is None else max_train
    n_train = len(data.train)
    train_idx = stratified_subset(data.train.labels, cap, seed) if cap is not None else np.arange(n_train)
    if data.task == ClassificationTask.name:
        _check(data, train_idx)

    x_train = seen(data.train.images[torch.from_numpy(train_idx)])
    y_train = data.train.labels.numpy()[train_idx]
    x_test, y_test = seen(data.test.images), data.test.labels.numpy()

    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # One BLAS thread: the parallelism is in n_jobs (forest, kNN). Multithreaded BLAS changes the
    # MLP's float sums with the core count, and on 2 busy cores it made logreg/MLP fits 2-10x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        notes = _fit(estimator, x_train, y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        predictions = estimator.predict(x_test)
        predict_seconds = time.perf_counter() - start
        val_predictions = estimator.predict(seen(data.val.images)) if data.val is not None else None

    settings = estimator.get_params()
    accuracy, metrics = BASELINES[data.task][1](predictions, y_test)
    val_metrics = {}
    if val_predictions is not None:
        val_metrics = BASELINES[data.task][1](val_predictions, data.val.labels.numpy())[1]
    return BaselineResult(
        name=name,
        description=spec.description,
        accuracy=accuracy,
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        train_samples=len(train_idx),
        # A regression's settings sit inside its target scaler, text beside columns' inside "features".
        params={
            key: settings.get(f"regressor__{key}", settings.get(key, settings.get(f"features__{key}")))
            for key in spec.keys
        },
        notes=notes,
        metrics=metrics,
        val_metrics=val_metrics,
    )


def run_baselines(
    names: list[str], data: LoadedData, seed: int = 0, max_train: int | None = None
) -> list[BaselineResult]:
    """run_baseline for each name, in order. Every name is checked first, so a typo in the last one
    does not surface after the others have run for minutes."""
    for name in names:
        _spec(name, data.task, data.text is not None)
    _require_sklearn()
    return [run_baseline(name, data, seed=seed, max_train=max_train) for name in names]


def probes(name: str, config: Any, data: LoadedData, log: Callable[[str], None]) -> Any:
    """What baseline `name` fits on where it is not pixels: the pretrained backbone's features
    (`experiments.linear_probe`), else None."""
    if not _spec(name, data.task, data.text is not None).pretrained:
        return None
    from tocha.experiments.linear_probe import backbone_features

    return backbone_features(config, data, log)


def check_baselines(names: list[str], config: Any) -> None:
    """Every name exists for the task the config's data will have, and scikit-learn is installed:
    checked before a comparison trains anything."""
    from tocha.data.tables import declared_task, is_table
    from tocha.data.text_set import is_text

    d = config.data
    task = declared_task(d.name, d.task, d.target) if is_table(d.name) else ClassificationTask.name
    for name in names:
        if is_text(d):
            _spec(name, ClassificationTask.name, text=True)
        elif task is None:  # a table file whose task shows only once it is read: either kind
            if not any(name in specs for specs, _ in BASELINES.values()):
                _spec(name)
        else:
            _spec(name, task)
        if name in _SPECS and _SPECS[name].pretrained and config.model.pretrained is None:
            from tocha.models.pretrained import IMAGENET_URLS

            models = ", ".join(IMAGENET_URLS)
            raise TochaError(f"--baselines {name} fits the pretrained backbone's features: give "
                             f"--pretrained (and a model that has them: {models})")  # fmt: skip
    _require_sklearn()
