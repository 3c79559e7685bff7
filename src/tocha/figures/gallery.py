"""Figures of images and of activation functions (PNG, written atomically).

- `sample_grid`: random images of each class, one row per class (`tocha data show`).
- `plot_confidently_wrong`: the test images a model got wrong with the most confidence.
- `plot_activations`: ReLU, LeakyReLU, Sigmoid, Tanh, GELU and their derivatives, the picture
  behind "vanishing gradients" and "dying ReLU".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tocha.errors import TochaError
from tocha.figures.plots import pyplot, save_figure

MAX_GRID = 64  # more images than this make cells too small to read
TITLE_FONTSIZE = 7
LEAKY_SLOPE = 0.1  # not torch's 0.01: a slope of 0.01 is indistinguishable from ReLU's 0 on the plot


def _show(ax: Any, image: torch.Tensor) -> None:
    """One uint8 (C, H, W) image on `ax`: grayscale for C=1, RGB for C=3, no ticks."""
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    elif image.shape[0] == 3:
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    else:
        raise ValueError(f"images must have 1 or 3 channels, got {image.shape[0]}")
    ax.set_xticks([])
    ax.set_yticks([])


def _check_images(images: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, 1 or 3, H, W), got {images.dtype} {tuple(images.shape)}")


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of an about-square grid for n images: columns = ceil(sqrt(n))."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def _cell_size(titles: list[str]) -> tuple[float, float]:
    """Inches per cell, wide enough for the longest title line and tall enough for its lines."""
    lines = [t.split("\n") for t in titles] or [[""]]
    longest = max(len(line) for t in lines for line in t)
    return max(1.1, 0.07 * longest), 1.1 + 0.13 * max(len(t) for t in lines)


def plot_image_grid(
    images: torch.Tensor,
    titles: list[str],
    path: Path,
    title: str = "",
    *,
    title_colors: list[str] | None = None,
) -> None:
    """An about-square grid of up to MAX_GRID uint8 (N, C, H, W) images, each with its small title."""
    _check_images(images)
    n = len(images)
    if not 1 <= n <= MAX_GRID:
        raise ValueError(f"plot_image_grid takes 1 to {MAX_GRID} images, got {n}")
    if len(titles) != n or (title_colors is not None and len(title_colors) != n):
        raise ValueError(f"{n} images need {n} titles (and colors, if given)")
    plt = pyplot()
    rows, cols = grid_shape(n)
    width, height = _cell_size(titles)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")  # the last row's unused cells
            continue
        _show(ax, images[i])
        ax.set_title(titles[i], fontsize=TITLE_FONTSIZE, color=title_colors[i] if title_colors else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def sample_indices(labels: torch.Tensor, n_classes: int, per_class: int, seed: int = 0) -> list[list[int]]:
    """For each class 0..n_classes-1, up to `per_class` random indices of its images (seeded).

    A class with fewer images gets all of them; a class with none gets an empty list.
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(n_classes):
        members = torch.nonzero(labels == c).flatten()
        pick = torch.randperm(len(members), generator=generator)[:per_class]
        chosen.append(members[pick].tolist())
    return chosen


def sample_grid(
    data: Any, path: Path, per_class: int = 8, seed: int = 0, *, split: str = "train"
) -> list[list[int]]:
    """`per_class` random images of every class of `data` (a `tocha.data.LoadedData`: its name,
    classes and splits), one row per class labelled with its name.

    Returns the chosen indices into the split, row by row (class by class).
    """
    if split not in ("train", "test"):
        raise TochaError(f"split must be 'train' or 'test', got {split!r}")
    if per_class < 1:
        raise TochaError(f"per_class must be at least 1, got {per_class}")
    tensors = data.train if split == "train" else data.test
    chosen = sample_indices(tensors.labels, len(data.classes), per_class, seed)

    plt = pyplot()
    rows = len(data.classes)
    fig, axes = plt.subplots(rows, per_class, figsize=(per_class * 0.9 + 1.0, rows * 0.9), squeeze=False)
    for c, (name, indices) in enumerate(zip(data.classes, chosen, strict=True)):
        for j, ax in enumerate(axes[c]):
            if j < len(indices):
                _show(ax, tensors.images[indices[j]])
            else:  # a class with fewer images than per_class: leave the cell visibly empty
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
        # The name as the row's y label: a title on every image would repeat it per_class times.
        label = name if indices else f"{name}\n(none)"
        axes[c][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{data.name} ({split}): {per_class} random images per class, seed {seed}")
    fig.tight_layout()
    save_figure(fig, path)
    return chosen


def confidently_wrong(
    outputs: torch.Tensor, labels: torch.Tensor, k: int = 16
) -> list[tuple[int, int, float]]:
    """The k misclassified samples whose wrong prediction had the highest probability.

    `outputs` are logits or log-probabilities (N, K): softmax turns either into probabilities.
    Returns (index, predicted class, probability) tuples, most confident first; fewer than k when
    fewer samples are wrong. Equal probabilities keep index order.
    """
    if outputs.ndim != 2 or labels.shape != (len(outputs),):
        raise ValueError(
            f"outputs (N, K) and labels (N,) expected, got {tuple(outputs.shape)} and {tuple(labels.shape)}"
        )
    probs = torch.softmax(outputs.detach().float(), dim=1)
    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != labels.to(predicted.device)).flatten()
    order = torch.sort(confidence[wrong], descending=True, stable=True).indices[: max(k, 0)]
    return [(int(wrong[i]), int(predicted[wrong[i]]), float(confidence[wrong[i]])) for i in order]


def plot_confidently_wrong(
    images: torch.Tensor,
    outputs: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    *,
    path: Path,
    k: int = 16,
) -> list[tuple[int, int, float]]:
    """Grid of the k most confidently wrong images, titled "true: X / pred: Y 97%".

    Returns confidently_wrong's list. With no misclassified image the figure says so.
    """
    found = confidently_wrong(outputs, labels, min(k, MAX_GRID))
    n_wrong = int((outputs.argmax(dim=1) != labels).sum())
    if not found:
        _message_figure(f"no misclassified images among {len(labels)}", path)
        return found
    titles = [f"true: {classes[int(labels[i])]}\npred: {classes[p]} {percent(prob)}" for i, p, prob in found]
    plot_image_grid(
        images[[i for i, _, _ in found]],
        titles,
        path,
        title=f"the {len(found)} most confident of {n_wrong} mistakes ({len(labels)} images)",
        title_colors=["firebrick"] * len(found),
    )
    return found


def percent(p: float) -> str:
    """A probability as a short percentage that never rounds a wrong prediction up to "100%"."""
    if p < 0.995:
        return f"{p:.0%}"
    return f"{math.floor(p * 1000) / 10:.1f}%" if p < 0.999 else ">99.9%"


def _message_figure(text: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    save_figure(fig, path)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ReLU": F.relu,
    "LeakyReLU": lambda x: F.leaky_relu(x, negative_slope=LEAKY_SLOPE),
    "Sigmoid": F.sigmoid,
    "Tanh": F.tanh,
    "GELU": F.gelu,
}


def activation_curves(x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (f(x), f'(x)) for every activation in ACTIVATIONS, the derivative by autograd.

    Each function acts element by element, so the gradient of sum(f(x)) is f'(x) at every point.
    """
    curves = {}
    with torch.enable_grad():  # also when called under torch.no_grad()
        for name, function in ACTIVATIONS.items():
            xs = x.detach().clone().requires_grad_(True)
            y = function(xs)
            (dy,) = torch.autograd.grad(y.sum(), xs)
            curves[name] = (y.detach(), dy)
    return curves


def plot_activations(path: Path) -> None:
    """Activations (left) and their derivatives (right) on [-5, 5], with the two lessons marked."""
    save_figure(activations_figure(), path)


def activations_figure() -> Any:
    """The figure `plot_activations` saves (its legend inside its panel: a test checks it)."""
    plt = pyplot()
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    curves = activation_curves(x)
    styles = {"ReLU": "-", "LeakyReLU": "--", "Sigmoid": "-", "Tanh": "-", "GELU": ":"}
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, (y, dy) in curves.items():
        label = f"{name}*" if name == "LeakyReLU" else name
        ax_f.plot(x, y, styles[name], lw=2, label=label)
        ax_d.plot(x, dy, styles[name], lw=2, label=label)
    ax_f.set(xlabel="x", ylabel="f(x)", title="activation functions", ylim=(-1.5, 5.2))
    ax_d.set(xlabel="x", ylabel="f'(x)  (autograd)", title="their derivatives", ylim=(-0.2, 1.25))
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="gray", lw=0.8)
        ax.axvline(0, color="gray", lw=0.8)
        ax.grid(alpha=0.3)
    ax_f.legend(loc="upper left")
    _annotate_lessons(ax_d, x, curves)
    note = f"* LeakyReLU drawn with slope {LEAKY_SLOPE} for x < 0, to be seen; the models use 0.01"
    fig.text(0.01, 0.01, note, fontsize=8, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _annotate_lessons(ax: Any, x: torch.Tensor, curves: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Point at the flat tails of sigmoid/tanh and at ReLU's zero slope for x < 0."""

    def at(name: str, where: float) -> tuple[float, float]:
        i = int(torch.argmin((x - where).abs()))
        return float(x[i]), float(curves[name][1][i])

    box = {"boxstyle": "round", "fc": "white", "ec": "gray", "alpha": 0.9}
    arrow = {"arrowstyle": "->", "color": "black"}
    text = "vanishing gradients: sigmoid' and tanh'\n→ 0 for large |x| (and sigmoid' ≤ 0.25)"
    ax.annotate(text, xy=at("Sigmoid", 4.0), xytext=(1.2, 0.62), fontsize=8, bbox=box, arrowprops=arrow)
    ax.annotate("", xy=at("Tanh", 2.6), xytext=(2.3, 0.62), arrowprops=arrow)
    ax.annotate(
        "dying ReLU: ReLU' = 0 for x < 0,\na unit stuck there gets no gradient",
        xy=at("ReLU", -2.5),
        xytext=(-4.9, 0.5),
        fontsize=8,
        bbox=box,
        arrowprops=arrow,
    )
