"""Metrics against direct numpy computations: confusion matrix, precision/recall/F1, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import one_epoch
from torch import nn

from tocha.data.tensorset import TensorSet
from tocha.tasks.classification import make_loss
from tocha.tasks.metrics import confusion_matrix, evaluate_outputs, format_report, per_class_report


def numpy_confusion(pred: np.ndarray, true: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(true, pred, strict=True):
        cm[t, p] += 1
    return cm


def numpy_prf(pred: np.ndarray, true: np.ndarray, k: int) -> list[tuple[float, float, float, int]]:
    out = []
    for c in range(k):
        tp = int(np.sum((pred == c) & (true == c)))
        fp = int(np.sum((pred == c) & (true != c)))
        fn = int(np.sum((pred != c) & (true == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append((precision, recall, f1, int(np.sum(true == c))))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_confusion_matrix_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    true = rng.integers(0, k, size=300)
    pred = np.where(rng.random(300) < 0.6, true, rng.integers(0, k, size=300))
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(true), k)
    assert cm.shape == (k, k)
    np.testing.assert_array_equal(cm.numpy(), numpy_confusion(pred, true, k))
    assert int(cm.sum()) == 300


def test_confusion_matrix_orientation() -> None:
    # one sample of true class 0 predicted as 2: row 0 (true), column 2 (predicted)
    cm = confusion_matrix(torch.tensor([2]), torch.tensor([0]), 3)
    assert cm.tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("seed", range(5))
def test_per_class_report_matches_formulas(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    k = 6
    true = rng.integers(0, k, size=200)
    pred = np.where(rng.random(200) < 0.5, true, rng.integers(0, k, size=200))
    pred[pred == 5] = 4  # class 5 is never predicted: precision undefined -> 0
    classes = [f"class-{i}" for i in range(k)]
    rows = per_class_report(confusion_matrix(torch.from_numpy(pred), torch.from_numpy(true), k), classes)
    assert [r.name for r in rows] == classes
    for r, (precision, recall, f1, support) in zip(rows, numpy_prf(pred, true, k), strict=True):
        assert r.precision == pytest.approx(precision)
        assert r.recall == pytest.approx(recall)
        assert r.f1 == pytest.approx(f1)
        assert r.support == support
    assert rows[5].precision == 0.0 and rows[5].f1 == 0.0


def test_class_without_samples_reports_zeros() -> None:
    pred = torch.tensor([0, 1, 1, 0])
    true = torch.tensor([0, 1, 0, 0])
    rows = per_class_report(confusion_matrix(pred, true, 3), ["a", "b", "c"])
    assert (rows[2].precision, rows[2].recall, rows[2].f1, rows[2].support) == (0.0, 0.0, 0.0, 0)
    assert rows[0].precision == 1.0 and rows[0].recall == pytest.approx(2 / 3)
    assert rows[1].precision == 0.5 and rows[1].recall == 1.0
    assert all(np.isfinite([r.precision, r.recall, r.f1]).all() for r in rows)


def test_evaluate_outputs_accuracy_is_correct_over_total() -> None:
    rng = np.random.default_rng(3)
    n, k = 103, 4  # not a multiple of any batch size
    outputs = torch.from_numpy(rng.normal(size=(n, k))).float()
    labels = torch.from_numpy(rng.integers(0, k, size=n))
    ev = evaluate_outputs(outputs, labels, make_loss("cross_entropy"))
    predicted = outputs.argmax(dim=1)
    assert ev.accuracy == pytest.approx(int((predicted == labels).sum()) / n)
    assert ev.loss == pytest.approx(torch.nn.functional.cross_entropy(outputs, labels).item(), rel=1e-6)
    assert ev.samples == n
    np.testing.assert_array_equal(ev.confusion.numpy(), numpy_confusion(predicted.numpy(), labels.numpy(), k))


def test_epoch_accuracy_is_not_a_mean_of_batch_means() -> None:
    # 10 samples in batches of 4, 4, 2 with a frozen model (lr 0): accuracy must be correct / 10.
    torch.manual_seed(0)
    images = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8)
    labels = torch.randint(0, 3, (10,))
    data = TensorSet(images, labels)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    preprocess = lambda x: x.float() / 255  # noqa: E731
    with torch.no_grad():
        logits = model(preprocess(images))
    expected_acc = int((logits.argmax(1) == labels).sum()) / 10
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    result = one_epoch(
        model,
        data,
        loss_fn=make_loss("cross_entropy"),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        preprocess=preprocess,
        batch_size=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.samples == 10
    assert result.accuracy == pytest.approx(expected_acc)
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)


def test_format_report_contains_every_class() -> None:
    classes = ["T-shirt/top", "Trouser", "A very long class name indeed", "x"]
    pred = torch.tensor([0, 1, 2, 3, 0, 0, 2])
    true = torch.tensor([0, 1, 2, 3, 1, 0, 3])
    outputs = torch.nn.functional.one_hot(pred, 4).float()
    ev = evaluate_outputs(outputs, true, make_loss("cross_entropy"))
    text = format_report(ev, classes)
    lines = text.splitlines()
    for name in classes:
        assert any(line.startswith(name) for line in lines), name
    assert "macro avg F1" in text
    assert "confusion matrix" in text
    cm_rows = lines[-4:]
    assert [int(v) for v in cm_rows[1].split()[-4:]] == [1, 1, 0, 0]  # true Trouser row
    macro = sum(r.f1 for r in per_class_report(ev.confusion, classes)) / 4
    assert f"{macro:.4f}" in text
