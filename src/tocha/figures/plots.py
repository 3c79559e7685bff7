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
                *, label: str = "", kept_epoch: int = 0) -> bytes:  # fmt: skip
    """Train, validation (and, where scored every epoch, test) loss and `metric` (drawn times
    `scale`, under `label`) against epoch, side by side; `kept_epoch`, the kept weights', marked."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    label = label or metric
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    test = "test (not used for any choice)" if "val_loss" in history[0] else "test"
    for split, style, name in (("train", "-o", "train"), ("val", "-s", "validation"), ("test", ":^", test)):
        if f"{split}_loss" not in history[0]:
            continue
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], style, label=name)
        ax_metric.plot(epochs, [scale * r[f"{split}_{metric}"] for r in history], style, label=name)
    if kept_epoch:
        for ax in (ax_loss, ax_metric):
            ax.axvline(kept_epoch, color="grey", linestyle="--", alpha=0.6, label=f"kept: epoch {kept_epoch}")
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
                        scale: float = 1.0, *, label: str = "") -> bytes:  # fmt: skip
    """Validation `metric` (times `scale`, under `label`) and loss per epoch for several cells (the
    test split's for runs without a validation split): the mean over seeds as a line, the range
    over seeds as a band. `series` maps a label to the histories of its seeds."""
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    first = next(iter(series.values()))[0][0]
    split = "val" if "val_loss" in first else "test"
    words = "validation" if split == "val" else "test"
    score_scale, score_label = scale, f"{words} {label or metric}"
    for label, histories in series.items():
        epochs = [row["epoch"] for row in histories[0]]
        for ax, key, scale in ((ax_acc, f"{split}_{metric}", score_scale), (ax_loss, f"{split}_loss", 1)):
            per_epoch = list(zip(*[[scale * row[key] for row in h] for h in histories], strict=False))
            mean = [sum(v) / len(v) for v in per_epoch]
            (line,) = ax.plot(epochs[: len(mean)], mean, "-o", ms=3, label=label)
            if len(histories) > 1:
                ax.fill_between(epochs[: len(mean)], [min(v) for v in per_epoch], [max(v) for v in per_epoch],
                                color=line.get_color(), alpha=0.2)  # fmt: skip
    ax_acc.set(xlabel="epoch", ylabel=score_label, title=f"{score_label} (band: min-max over seeds)")
    ax_loss.set(xlabel="epoch", ylabel=f"{words} loss", title=f"{words} loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return png(fig)


def plot_score_vs_time(points: list[tuple[str, list[float], list[float]]], metric: str, scale: float = 1.0,
                       label: str = "", *, title: str = "") -> bytes:  # fmt: skip
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


def plot_lr_find(rates: list[float], losses: list[float], smoothed: list[float], suggested: float,
                 *, title: str = "") -> bytes:  # fmt: skip
    """The range test: each step's loss and its moving average against the learning rate (log axis),
    the suggested rate marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(rates, losses, color="lightgrey", lw=1, label="loss of each step")
    ax.plot(rates, smoothed, lw=2, label="smoothed")
    ax.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested lr {suggested:.2e}")
    finite = [v for v in smoothed if v == v and v != float("inf")]
    if finite:  # the divergence at the end would squash the curve: show up to 1.5x its start
        ax.set_ylim(min(finite) * 0.9, max(finite[0], min(finite)) * 1.5)
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="training loss",
           title=title or "learning-rate range test")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return png(fig)
