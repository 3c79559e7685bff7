"""The scikit-learn estimators behind the baselines: builders (seed -> unfitted estimator) and what
each is, for classification (images and tables) and regression (tables).

Each builder imports its estimator itself, so importing this module (e.g. for BASELINES in `--help`)
never pays for scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def _probe(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The features are standardised (they are unbounded activations); lbfgs converges within 1,000.
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))


def _mlp(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    # One hidden layer, Adam; 20 epochs keeps full MNIST under a minute on 2 cores.
    return MLPClassifier(hidden_layer_sizes=(256,), batch_size=256, max_iter=20, random_state=seed)


# Regression baselines (tables): the target is standardised for fitting and scaled back for scoring,
# as tocha's own regression does; it matters to the MLP and nothing to the closed-form linear fits.
def _linear(seed: int) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression()  # ordinary least squares, closed form: the floor a linear model can reach


def _ridge(seed: int) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0)


def _forest_regressor(seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=100, n_jobs=-1, random_state=seed)


def _knn_regressor(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=5, n_jobs=-1)


def _mlp_regressor(seed: int) -> Any:
    from sklearn.neural_network import MLPRegressor

    # Two hidden layers like tocha's default mlp (128, 64), Adam, early stopping off: a fixed budget.
    return MLPRegressor(hidden_layer_sizes=(128, 64), batch_size=64, max_iter=200, random_state=seed)


@dataclass(frozen=True)
class _Spec:
    description: str
    build: Callable[[int], Any]
    keys: tuple[str, ...]  # estimator settings reported in BaselineResult.params
    max_train: int | None  # default cap on training images; None = all of them
    pretrained: bool = False  # fitted on a pretrained backbone's features (`--pretrained`), not pixels


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
    "linear_probe": _Spec(
        "logistic regression on the pretrained backbone's features (with --pretrained)",
        _probe,
        ("logisticregression__C", "logisticregression__max_iter"),
        None,
        pretrained=True,
    ),
}

_REGRESSION_SPECS: dict[str, _Spec] = {
    "linear": _Spec("least-squares linear regression (closed form)", _linear, ("fit_intercept",), None),
    "ridge": _Spec("ridge regression (alpha=1)", _ridge, ("alpha",), None),
    "random_forest": _Spec("random forest of 100 regression trees", _forest_regressor,
                           ("n_estimators", "max_depth", "max_features"), None),
    "knn": _Spec("5-nearest neighbours, mean of their targets", _knn_regressor,
                 ("n_neighbors", "weights"), None),
    "mlp": _Spec("multilayer perceptron (128, 64) ReLU, Adam, 200 epochs", _mlp_regressor,
                 ("hidden_layer_sizes", "batch_size", "max_iter", "alpha"), None),
}  # fmt: skip

BASELINES: dict[str, str] = {name: spec.description for name, spec in _SPECS.items()}
REGRESSION_BASELINES: dict[str, str] = {name: spec.description for name, spec in _REGRESSION_SPECS.items()}


def _tfidf(seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # Each text arrives as its token ids written as words ("12 7 31"): n-grams of the run's own tokens.
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), sublinear_tf=True)
    return make_pipeline(vectorizer, LogisticRegression(C=10.0, max_iter=1000, random_state=seed))


def beside_columns(pipeline: Any) -> Any:
    """A text baseline (a vectorizer, then a model) for text read beside table columns: its rows
    (N, 1 + F) are the text, vectorised as before, and the F standardised columns beside it."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    (name, vectorizer), model = pipeline.steps[0], pipeline.steps[-1]
    numbers = FunctionTransformer(np.asarray, kw_args={"dtype": np.float64})  # the object rows' numbers
    both = ColumnTransformer([(name, vectorizer, 0), ("columns", numbers, slice(1, None))])
    return Pipeline([("features", both), model])


# Text runs (`data.text`): baselines on the texts' tokens, the run's own vocabulary and cut.
_TEXT_SPECS: dict[str, _Spec] = {
    "tfidf": _Spec(
        "TF-IDF of the run's tokens and token pairs, then logistic regression (C=10)",
        _tfidf,
        ("tfidfvectorizer__ngram_range", "logisticregression__C"),
        None,
    ),
}


class LastValues:
    """The naive forecasts, as a scikit-learn estimator on a window's rows (N, F*W), the target's
    own W values first: the last value for every step ahead (`season` None), or the value one
    season before each step (seasonal naive: y[t+h] = y[t+h-season], the season within the window)."""

    def __init__(self, window: int = 1, season: int | None = None) -> None:
        self.window, self.season = window, season

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"window": self.window, "season": self.season}

    def fit(self, x: np.ndarray, y: np.ndarray) -> LastValues:
        self.horizon_ = y.shape[1] if y.ndim == 2 else 1
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        past = x[:, : self.window]  # the target column's window
        steps = np.arange(self.horizon_)
        if self.season is None:
            columns = np.full(self.horizon_, self.window - 1)
        else:  # step h (from 0) repeats the value `season` before it, itself in the window
            columns = self.window - self.season + steps % self.season
        return past[:, columns]


# Forecasts (`data.series`): naive, seasonal naive, and a linear model of the window.
_FORECAST_SPECS: dict[str, _Spec] = {
    "naive": _Spec("the last value, for every step ahead", lambda seed: LastValues(), ("window",), None),
    "seasonal_naive": _Spec(
        "the value one season (--season rows) before each step",
        lambda seed: LastValues(),
        ("window", "season"),
        None,
    ),
    "linear": _Spec(
        "least squares of the window's values, one line per step ahead", _linear, ("fit_intercept",), None
    ),
}
