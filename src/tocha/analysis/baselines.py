"""scikit-learn baselines on exactly the train/test split a tocha run uses.

They answer "is my network any better than a classic model?": every baseline sees the same images
(flattened, scaled to 0..1) and is scored on the full test split. Estimators that scale badly with
the number of training images (a kernel SVM is O(N^2) in memory and worse in time) train on a seeded,
stratified subsample, and the result records how many images were used so no report hides it.

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
from tocha.errors import TochaError

SKLEARN_MISSING = "scikit-learn is not installed: pip install 'tocha[sklearn]' (or pip install scikit-learn)"


def _require_sklearn() -> None:
    """Fail with the install command rather than a bare ImportError deep inside a builder."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise TochaError(SKLEARN_MISSING) from None


# Builders: seed -> unfitted estimator. Each imports its estimator itself so that importing this
# module (e.g. for BASELINES in `--help`) never pays for scikit-learn.
def _logreg(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    # lbfgs, multinomial; 200 iterations is near convergence on 0..1 pixels without feature scaling.
    return LogisticRegression(C=1.0, max_iter=200, random_state=seed)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)


def _svm(seed: int) -> Any:
    from sklearn.svm import SVC

    # C=5 with gamma="scale" is the usual strong setting for MNIST-like pixels in 0..1;
    # a larger kernel cache makes the SMO solver noticeably faster at 10,000 images.
    return SVC(kernel="rbf", C=5.0, gamma="scale", cache_size=1000, random_state=seed)


def _knn(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    # Brute force: trees do not help in 784 dimensions. No randomness (seed unused).
    return KNeighborsClassifier(n_neighbors=3, algorithm="brute", n_jobs=-1)


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    # One hidden layer, Adam; 20 epochs keeps full MNIST under a minute on 2 cores.
    return MLPClassifier(hidden_layer_sizes=(256,), batch_size=256, max_iter=20, random_state=seed)


@dataclass(frozen=True)
class _Spec:
    description: str
    build: Callable[[int], Any]
    keys: tuple[str, ...]  # estimator settings reported in BaselineResult.params
    max_train: int | None  # default cap on training images; None = all of them


_SPECS: dict[str, _Spec] = {
    "logreg": _Spec(
        "multinomial logistic regression on raw pixels (lbfgs, C=1)",
        _logreg,
        ("C", "solver", "max_iter"),
        None,
    ),
    "random_forest": _Spec(
        "random forest of 100 trees on raw pixels",
        _random_forest,
        ("n_estimators", "max_depth", "max_features"),
        None,
    ),
    "svm": _Spec(
        "kernel SVM (RBF, C=5, gamma=scale), trained on at most 10,000 images",
        _svm,
        ("kernel", "C", "gamma"),
        10_000,
    ),
    "knn": _Spec(
        "3-nearest neighbours, Euclidean distance on raw pixels",
        _knn,
        ("n_neighbors", "weights", "metric"),
        None,
    ),
    "mlp": _Spec(
        "multilayer perceptron, one hidden layer of 256 ReLU units (Adam, 20 epochs)",
        _mlp,
        ("hidden_layer_sizes", "activation", "solver", "batch_size", "max_iter", "alpha"),
        None,
    ),
}

BASELINES: dict[str, str] = {name: spec.description for name, spec in _SPECS.items()}


@dataclass
class BaselineResult:
    """One baseline's score on the full test split, and what it took to get there."""

    name: str
    description: str
    accuracy: float  # correct / total on the full test split
    fit_seconds: float
    predict_seconds: float
    train_samples: int  # images actually used for fitting (fewer than the split when capped)
    params: dict[str, Any]  # the estimator's key settings
    notes: list[str] = field(default_factory=list)  # e.g. stopped before converging


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise TochaError(f"unknown baseline {name!r}; valid names: {', '.join(_SPECS)}")
    return _SPECS[name]


def default_max_train(name: str) -> int | None:
    """The cap on training images `name` uses when none is given (None: no cap)."""
    return _spec(name).max_train


def build_estimator(name: str, seed: int = 0) -> Any:
    """The unfitted scikit-learn estimator behind baseline `name`."""
    spec = _spec(name)
    _require_sklearn()
    return spec.build(seed)


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


def run_baseline(name: str, data: LoadedData, seed: int = 0, max_train: int | None = None) -> BaselineResult:
    """Fit baseline `name` on data.train (capped at `max_train`, default the baseline's own cap) and
    score it on all of data.test."""
    spec = _spec(name)
    estimator = build_estimator(name, seed)
    cap = spec.max_train if max_train is None else max_train
    n_train = len(data.train)
    train_idx = stratified_subset(data.train.labels, cap, seed) if cap is not None else np.arange(n_train)
    _check(data, train_idx)

    x_train = image_features(data.train.images[torch.from_numpy(train_idx)])
    y_train = data.train.labels.numpy()[train_idx]
    x_test, y_test = image_features(data.test.images), data.test.labels.numpy()

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

    settings = estimator.get_params()
    return BaselineResult(
        name=name,
        description=spec.description,
        accuracy=int((predictions == y_test).sum()) / len(y_test),
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        train_samples=len(train_idx),
        params={key: settings[key] for key in spec.keys},
        notes=notes,
    )


def run_baselines(
    names: list[str], data: LoadedData, seed: int = 0, max_train: int | None = None
) -> list[BaselineResult]:
    """run_baseline for each name, in order. Every name is checked first, so a typo in the last one
    does not surface after the others have run for minutes."""
    for name in names:
        _spec(name)
    _require_sklearn()
    return [run_baseline(name, data, seed=seed, max_train=max_train) for name in names]
