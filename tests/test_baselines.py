"""scikit-learn baselines on real MNIST digits (the bundled sample): accuracy, determinism, the cap."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'tocha[sklearn]')")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tocha.data.load import load_dataset  # noqa: E402
from tocha.data.tensorset import LoadedData, TensorSet  # noqa: E402
from tocha.errors import TochaError  # noqa: E402
from tocha.experiments.baseline_estimators import _SPECS, BASELINES  # noqa: E402
from tocha.experiments.baselines import (  # noqa: E402
    build_estimator,
    default_max_train,
    image_features,
    run_baseline,
    run_baselines,
    stratified_subset,
)

N_TRAIN, N_TEST = 1000, 300
# Measured on this subset with seed 0: logreg 0.880, random_forest 0.893, svm 0.930, knn 0.843,
# mlp 0.897. The floor leaves a margin of 13+ test images; chance is 0.10.
MIN_ACCURACY = 0.80


def _subset(data: LoadedData, n_train: int, n_test: int) -> LoadedData:
    return LoadedData(
        name=f"{data.name}-{n_train}",
        classes=data.classes,
        train=TensorSet(data.train.images[:n_train], data.train.labels[:n_train]),
        test=TensorSet(data.test.images[:n_test], data.test.labels[:n_test]),
        source=data.source,
    )


@pytest.fixture(scope="module")
def small() -> LoadedData:
    """The first 1000 train / 300 test images of the bundled MNIST sample."""
    return _subset(load_dataset("mnist-sample", log=lambda _: None), N_TRAIN, N_TEST)


PIXELS = [name for name in BASELINES if not _SPECS[name].pretrained]  # linear_probe: features, below


@pytest.mark.parametrize("name", PIXELS)
def test_baseline_is_accurate_deterministic_and_matches_sklearn(small: LoadedData, name: str) -> None:
    first = run_baseline(name, small, seed=0)
    assert first.name == name and first.description == BASELINES[name]
    assert first.train_samples == N_TRAIN  # no cap below 1000 for any baseline
    assert first.accuracy > MIN_ACCURACY, f"{name}: {first.accuracy:.3f}"
    assert first.fit_seconds >= 0 and first.predict_seconds >= 0

    assert run_baseline(name, small, seed=0).accuracy == first.accuracy  # same seed, same result

    # The same estimator fitted directly: its predictions scored by sklearn give the same number.
    estimator = build_estimator(name, seed=0)
    # One BLAS thread as run_baseline uses: the MLP's float sums depend on the thread count.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(image_features(small.train.images), small.train.labels.numpy())
        predictions = estimator.predict(image_features(small.test.images))
    assert first.accuracy == accuracy_score(small.test.labels.numpy(), predictions)
    settings = estimator.get_params()
    assert first.params and all(settings[key] == value for key, value in first.params.items())


def test_the_linear_probe_fits_what_it_is_given_and_needs_features(small: LoadedData) -> None:
    """The probe is fitted on what `featurize` makes of the images (a backbone's features; here the
    pixels, to compare with scikit-learn fitted by hand), and refused without it."""
    with pytest.raises(TochaError, match="fits a pretrained backbone's features: give --pretrained"):
        run_baseline("linear_probe", small)
    probe = run_baseline("linear_probe", small, featurize=image_features)
    estimator = build_estimator("linear_probe", seed=0)
    with threadpool_limits(limits=1, user_api="blas"):
        estimator.fit(image_features(small.train.images), small.train.labels.numpy())
    assert probe.accuracy == accuracy_score(
        small.test.labels.numpy(), estimator.predict(image_features(small.test.images))
    )
    assert probe.params == {"logisticregression__C": 1.0, "logisticregression__max_iter": 1000}


def test_convergence_is_reported_in_the_result_not_as_a_warning(small: LoadedData) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_baseline("mlp", small, seed=0)  # 20 epochs: Adam stops before converging
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert result.notes and result.notes[0].startswith("not converged: ")
    assert "Maximum iterations (20)" in result.notes[0]


def test_features_are_flattened_pixels_scaled_to_unit_range(small: LoadedData) -> None:
    features = image_features(small.train.images[:50])
    expected = small.train.images[:50].numpy().reshape(50, 28 * 28).astype(np.float32) / 255
    assert features.dtype == np.float32 and features.shape == (50, 784)
    np.testing.assert_array_equal(features, expected)
    assert features.min() == 0.0 and features.max() == 1.0


def test_capped_run_records_the_images_it_used(small: LoadedData) -> None:
    result = run_baseline("svm", small, seed=0, max_train=200)
    assert result.train_samples == 200
    assert result.accuracy > 0.6  # 20 images a class still beat chance (0.1) by far
    assert run_baseline("svm", small, seed=0, max_train=5000).train_samples == N_TRAIN  # cap above N
    assert default_max_train("svm") == 10_000
    assert default_max_train("random_forest") is None


def test_stratified_subset_keeps_every_class_share() -> None:
    labels = load_dataset("mnist-sample", log=lambda _: None).train.labels[:N_TRAIN]
    chosen = stratified_subset(labels, 200, seed=3)
    assert len(chosen) == 200 == len(np.unique(chosen))
    counts = np.bincount(labels.numpy()[chosen], minlength=10)
    shares = np.bincount(labels.numpy(), minlength=10) * 200 / N_TRAIN
    assert np.all(np.abs(counts - shares) < 1 + 1e-9)  # every class within one image of its share
    np.testing.assert_array_equal(chosen, stratified_subset(labels, 200, seed=3))
    assert not np.array_equal(chosen, stratified_subset(labels, 200, seed=4))


def test_stratified_subset_never_drops_a_rare_class() -> None:
    labels = torch.tensor([0] * 600 + [1] * 399 + [2])  # class 2: one image in 1000
    chosen = stratified_subset(labels, 50, seed=0)
    assert len(chosen) == 50
    assert set(labels[chosen].tolist()) == {0, 1, 2}
    few = stratified_subset(torch.arange(10).repeat(10), 5, seed=0)  # fewer images than classes
    assert len(few) == 5 and len(set((few % 10).tolist())) == 5


def test_unknown_name_lists_the_valid_ones(small: LoadedData) -> None:
    with pytest.raises(TochaError) as error:
        run_baseline("xgboost", small)
    assert all(name in str(error.value) for name in BASELINES)
    with pytest.raises(TochaError, match="xgboost"):
        run_baselines(["knn", "xgboost"], small)


def test_run_baselines_runs_each_in_order(small: LoadedData) -> None:
    results = run_baselines(["knn", "svm"], small, seed=1)
    assert [r.name for r in results] == ["knn", "svm"]
    assert results[1].accuracy == run_baseline("svm", small, seed=1).accuracy


def test_unusable_splits_are_user_errors(small: LoadedData) -> None:
    empty = TensorSet(small.test.images[:0], small.test.labels[:0])
    no_test = LoadedData("x", small.classes, small.train, empty, "x")
    with pytest.raises(TochaError, match="test split is empty"):
        run_baseline("knn", no_test)
    ones = small.train.labels == 1
    one_class = LoadedData(
        "x", small.classes, TensorSet(small.train.images[ones], small.train.labels[ones]), small.test, "x"
    )
    with pytest.raises(TochaError, match="two classes"):
        run_baseline("logreg", one_class)
    with pytest.raises(TochaError, match="at least 1"):
        run_baseline("knn", small, max_train=0)


def test_missing_sklearn_names_the_extra(small: LoadedData, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what `import sklearn` sees when it is absent
    with pytest.raises(TochaError, match=r"tocha\[sklearn\]"):
        run_baseline("logreg", small)
