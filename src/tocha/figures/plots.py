"""Matplotlib figures of results: learning curves, a confusion matrix, predictions against truth,
a comparison's curves and scores. Each returns PNG bytes: the caller decides where they go (a run
folder, evaluate's folder, a report), so drawing and writing stay apart."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tocha.files import atomic_write


def pyplot():  # noqa: ANN202 - matplotlib types are heavy to import just for a hint
    import matplotlib

    matplotlib.use("Agg")  # files only: works with no display
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> bytes:
    """The figure as PNG bytes, rendered in memory; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def save_figure(fig: Any, path: Path) -> None:
    """The figure written atomically as a PNG file (closed)."""
    data = png(fig)
    atomic_write(path, lambda f: f.write(data))


def plot_curves(history: list[dict[str, float]], title: str, metric: str, scale: float = 1.0,
                label: str = "") -> bytes:  # fmt: skip
    """Train/test loss and `metric` (drawn times `scale`, under `label`) against epoch, side by side."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    label = label or metric
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], style, label=split)
        ax_metric.plot(epochs, [scale * r[f"{split}_{metric}"] for r in history], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_metric.set(xlabel="epoch", ylabel=label, title=label)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return png(fig)


def plot_predictions(predicted: Any, true: Any, title: str = "", target: str = "target") -> bytes:
    """Predicted against true numbers (the diagonal is a perfect model), and the residuals (true -
    predicted) against the prediction, where a pattern shows what the model misses."""
    plt = pyplot()
    fig, (ax_fit, ax_res) = plt.subplots(1, 2, figsize=(11, 4.5))
    alpha = 0.6 if len(true) < 2000 else 0.15
    ax_fit.scatter(true, predicted, s=8, alpha=alpha)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax_fit.plot([low, high], [low, high], "k--", lw=1, label="predicted = true")
    ax_fit.set(xlabel=f"true {target}", ylabel=f"predicted {target}", title="predicted against true")
    ax_fit.legend()
    ax_res.scatter(predicted, true - predicted, s=8, alpha=alpha)
    ax_res.axhline(0, color="k", ls="--", lw=1)
    ax_res.set(xlabel=f"predicted {target}", ylabel="residual (true - predicted)", title="residuals")
    for ax in (ax_fit, ax_res):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return png(fig)


TEXT_CLASSES = 30  # up to this many classes a cell shows its count and every class is named


def plot_confusion(cm: list[list[int]], classes: list[str], title: str = "") -> bytes:
    """Confusion matrix heat map (rows: true, columns: predicted). Up to `TEXT_CLASSES` classes,
    each cell shows its count; beyond, it is an image of fixed size with no text in the cells and
    about 30 class names on each axis, so a thousand classes draw as fast as ten."""
    plt = pyplot()
    k = len(classes)
    size = max(5.0, 0.55 * min(k, TEXT_CLASSES) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    if k <= TEXT_CLASSES:
        peak = max(max(row) for row in cm) or 1
        for i in range(k):
            for j in range(k):
                shade = "white" if cm[i][j] > peak / 2 else "black"
                ax.text(j, i, cm[i][j], ha="center", va="center", fontsize=8, color=shade)
    shown = range(0, k, max(1, -(-k // TEXT_CLASSES)))  # every class, or every n-th of many
    ax.set_xticks(list(shown), [classes[i] for i in shown], rotation=45, ha="right")
    ax.set_yticks(list(shown), [classes[i] for i in shown])
    ax.set(xlabel="predicted class", ylabel="true class", title=title or "confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return png(fig)


def plot_overlay_curves(series: dict[str, list[list[dict[str, float]]]], title: str, metric: str,
                        scale: float = 1.0, label: str = "") -> bytes:  # fmt: skip
    """Test `metric` (times `scale`, under `label`) and loss per epoch for several cells: the mean
    over seeds as a line, the range over seeds as a band. `series` maps a label to the histories of
    its seeds."""
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    score_scale, score_label = scale, f"test {label or metric}"
    for label, histories in series.items():
        epochs = [row["epoch"] for row in histories[0]]
        for ax, key, scale in ((ax_acc, f"test_{metric}", score_scale), (ax_loss, "test_loss", 1)):
            per_epoch = list(zip(*[[scale * row[key] for row in h] for h in histories], strict=False))
            mean = [sum(v) / len(v) for v in per_epoch]
            (line,) = ax.plot(epochs[: len(mean)], mean, "-o", ms=3, label=label)
            if len(histories) > 1:
                ax.fill_between(epochs[: len(mean)], [min(v) for v in per_epoch], [max(v) for v in per_epoch],
                                color=line.get_color(), alpha=0.2)  # fmt: skip
    ax_acc.set(xlabel="epoch", ylabel=score_label, title=f"{score_label} (band: min-max over seeds)")
    ax_loss.set(xlabel="epoch", ylabel="test loss", title="test loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return png(fig)


def plot_score_vs_time(points: list[tuple[str, list[float], list[float]]], metric: str, scale: float = 1.0,
                       label: str = "", title: str = "") -> bytes:  # fmt: skip
    """One marker per seed at (training seconds, test `metric` times `scale`), a colour per cell."""
    plt = pyplot()
    label = f"test {label or metric}"
    fig, ax = plt.subplots(figsize=(7, 5))
    for cell, seconds, scores in points:
        ax.scatter(seconds, [scale * a for a in scores], label=cell, alpha=0.8)
    ax.set(xlabel="training seconds", ylabel=label, title=title or f"{label} against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))  # outside: never over a point
    return png(fig)
