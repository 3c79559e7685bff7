"""Image grids, confidently-wrong picks and the activation figure, on real MNIST digits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tocha.data.load import load_dataset
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.figures.gallery import (
    LEAKY_SLOPE,
    MAX_GRID,
    activation_curves,
    activations_figure,
    confidently_wrong,
    grid_shape,
    percent,
    plot_activations,
    plot_confidently_wrong,
    plot_image_grid,
    sample_grid,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mnist() -> LoadedData:
    return load_dataset("mnist-sample", log=lambda _: None)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG that is complete and decodes; fails the test otherwise."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()  # checks the chunks' CRCs: a truncated write fails here
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _first_classes(data: LoadedData, n: int) -> LoadedData:
    keep = data.train.labels < n
    subset = TensorSet(data.train.images[keep], data.train.labels[keep])
    test_keep = data.test.labels < n
    test = TensorSet(data.test.images[test_keep], data.test.labels[test_keep])
    return LoadedData(f"{data.name}-{n}", data.classes[:n], subset, test, data.source)


# --- image grids ---------------------------------------------------------------------------------


def test_image_grid_writes_a_png_for_gray_and_rgb(mnist: LoadedData, tmp_path: Path) -> None:
    gray = mnist.train.images[:10]
    plot_image_grid(gray, [str(int(v)) for v in mnist.train.labels[:10]], tmp_path / "gray.png", title="ten")
    width, height = png_size(tmp_path / "gray.png")
    assert 250 < width < 1500 and 250 < height < 1500

    rgb = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    rgb[:, 0] = 255  # pure red: the figure must show colour, so the channels were kept
    plot_image_grid(rgb, ["a", "b", "c", "d"], tmp_path / "rgb.png", title_colors=["red"] * 4)
    array = pixels(tmp_path / "rgb.png").astype(int)
    assert ((array[..., 0] > 200) & (array[..., 1] < 50) & (array[..., 2] < 50)).sum() > 1000


def test_image_grid_rejects_bad_input(mnist: LoadedData, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="titles"):
        plot_image_grid(mnist.train.images[:3], ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=str(MAX_GRID)):
        plot_image_grid(mnist.train.images[: MAX_GRID + 1], ["a"] * (MAX_GRID + 1), tmp_path / "x.png")
    with pytest.raises(ValueError, match="uint8"):
        plot_image_grid(mnist.train.images[:2].float(), ["a", "b"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("n", [1, 2, 5, 16, 17, 64])
def test_grid_is_about_square_and_fits(n: int) -> None:
    rows, cols = grid_shape(n)
    assert rows * cols >= n > (rows - 1) * cols  # no empty last row
    assert cols == math.ceil(math.sqrt(n)) and rows <= cols


# --- sample grid ---------------------------------------------------------------------------------


def test_sample_grid_has_one_row_per_class(mnist: LoadedData, tmp_path: Path) -> None:
    chosen = sample_grid(mnist, tmp_path / "all.png", per_class=6, seed=0)
    assert len(chosen) == len(mnist.classes)
    for c, indices in enumerate(chosen):
        assert len(indices) == 6 == len(set(indices))
        assert (mnist.train.labels[indices] == c).all()

    sample_grid(_first_classes(mnist, 3), tmp_path / "three.png", per_class=6, seed=0)
    (w10, h10), (w3, h3) = png_size(tmp_path / "all.png"), png_size(tmp_path / "three.png")
    assert h10 > 2.5 * h3  # rows follow the classes
    assert abs(w10 - w3) < 0.2 * w10  # columns follow per_class


def test_sample_grid_is_seeded(mnist: LoadedData, tmp_path: Path) -> None:
    a = sample_grid(mnist, tmp_path / "a.png", per_class=4, seed=7, split="test")
    b = sample_grid(mnist, tmp_path / "b.png", per_class=4, seed=7, split="test")
    c = sample_grid(mnist, tmp_path / "c.png", per_class=4, seed=8, split="test")
    assert a == b != c
    np.testing.assert_array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))
    assert all((mnist.test.labels[row] == i).all() for i, row in enumerate(a))  # test split used


def test_sample_grid_with_short_and_empty_classes(mnist: LoadedData, tmp_path: Path) -> None:
    # Class 0 keeps 2 images, class 1 none: rows shrink or stay empty instead of failing.
    labels = mnist.train.labels
    keep = torch.cat([torch.nonzero(labels == 0).flatten()[:2], torch.nonzero(labels >= 2).flatten()])
    data = LoadedData("x", mnist.classes, TensorSet(mnist.train.images[keep], labels[keep]), mnist.test, "x")
    chosen = sample_grid(data, tmp_path / "short.png", per_class=5)
    assert [len(row) for row in chosen[:3]] == [2, 0, 5]
    png_size(tmp_path / "short.png")
    with pytest.raises(TochaError, match="split"):
        sample_grid(mnist, tmp_path / "bad.png", split="validation")


# --- confidently wrong ---------------------------------------------------------------------------


def _log_probs(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows).log()  # softmax of log p is p again: the probabilities are known


def test_confidently_wrong_orders_mistakes_by_confidence() -> None:
    outputs = _log_probs(
        [
            [0.98, 0.01, 0.01],  # label 0: right, very confident -> never listed
            [0.90, 0.05, 0.05],  # label 1: wrong (pred 0, 90%)
            [0.20, 0.60, 0.20],  # label 2: wrong (pred 1, 60%)
            [0.70, 0.20, 0.10],  # label 0: right
            [0.005, 0.005, 0.99],  # label 1: wrong (pred 2, 99%)
        ]
    )
    labels = torch.tensor([0, 1, 2, 0, 1])
    found = confidently_wrong(outputs, labels, k=16)  # k above the number of mistakes
    assert [(i, p) for i, p, _ in found] == [(4, 2), (1, 0), (2, 1)]
    assert [prob for _, _, prob in found] == pytest.approx([0.99, 0.90, 0.60], abs=1e-6)
    assert confidently_wrong(outputs, labels, k=2) == found[:2]
    # Logits shifted by a constant per row give the same softmax, so the same answer.
    shifted = confidently_wrong(outputs + torch.arange(5.0)[:, None] * 3, labels, k=16)
    assert [(i, p) for i, p, _ in shifted] == [(i, p) for i, p, _ in found]
    assert [prob for _, _, prob in shifted] == pytest.approx([prob for _, _, prob in found], abs=1e-6)
    assert confidently_wrong(outputs, outputs.argmax(dim=1)) == []  # all right: nothing listed


def test_plot_confidently_wrong_on_real_digits(mnist: LoadedData, tmp_path: Path) -> None:
    images, labels = mnist.test.images[:100], mnist.test.labels[:100]
    outputs = torch.randn(100, 10, generator=torch.Generator().manual_seed(0)) * 4  # a bad "model"
    found = plot_confidently_wrong(images, outputs, labels, mnist.classes, path=tmp_path / "wrong.png", k=9)
    assert len(found) == 9
    assert all(p != int(labels[i]) for i, p, _ in found)
    assert [prob for _, _, prob in found] == sorted((prob for _, _, prob in found), reverse=True)
    width, height = png_size(tmp_path / "wrong.png")
    assert width > 300 and height > 300

    perfect = torch.nn.functional.one_hot(labels, 10).float() * 10
    assert plot_confidently_wrong(images, perfect, labels, mnist.classes, path=tmp_path / "none.png") == []
    png_size(tmp_path / "none.png")  # still a figure, saying there is nothing to show


def test_percent_never_rounds_a_mistake_to_certainty() -> None:
    assert percent(0.97) == "97%"
    assert percent(0.9989) == "99.8%"
    assert percent(0.99999) == ">99.9%"
    assert "100" not in percent(1.0)


# --- activation functions ------------------------------------------------------------------------


def test_activation_derivatives_match_the_formulas() -> None:
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    curves = activation_curves(x)
    assert set(curves) == {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU"}

    s, ds = curves["Sigmoid"]
    torch.testing.assert_close(s, 1 / (1 + torch.exp(-x)))
    torch.testing.assert_close(ds, s * (1 - s))
    t, dt = curves["Tanh"]
    torch.testing.assert_close(dt, 1 - t**2)
    r, dr = curves["ReLU"]
    torch.testing.assert_close(r, x.clamp(min=0))
    torch.testing.assert_close(dr, (x > 0).double())  # the step; torch takes 0 at x = 0
    _, dl = curves["LeakyReLU"]
    torch.testing.assert_close(dl, torch.where(x > 0, 1.0, LEAKY_SLOPE).double())
    _, dg = curves["GELU"]  # exact GELU: x * Phi(x), derivative Phi(x) + x * phi(x)
    phi = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(dg, 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * phi)

    # The facts the figure annotates.
    assert ds.max() <= 0.25 + 1e-12 and ds[x.abs() >= 5 - 1e-9].max() < 0.01
    assert dt[x.abs() >= 5 - 1e-9].max() < 0.001


def test_activation_curves_work_under_no_grad() -> None:
    x = torch.tensor([-2.0, 0.5, 3.0])
    with torch.no_grad():
        _, dy = activation_curves(x)["Sigmoid"]
    s = torch.sigmoid(x)
    torch.testing.assert_close(dy, s * (1 - s))


def test_plot_activations_writes_a_figure(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "activations.png"
    plot_activations(path)
    width, height = png_size(path)
    assert width > 1000 and 350 < height < width
    assert [p.name for p in path.parent.iterdir()] == ["activations.png"]  # no temporary file left


def test_the_activations_legend_stays_inside_its_panel() -> None:
    figure = activations_figure()
    figure.canvas.draw()
    panel = figure.axes[0]
    legend = panel.get_legend().get_window_extent()
    box = panel.get_window_extent()
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0 and legend.y1 <= box.y1
