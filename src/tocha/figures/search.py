"""A search's figures (`tocha search`): the optimisation history, the validation metric against each
parameter, and the parameters' importances. Plain numbers in, PNG bytes out."""

from __future__ import annotations

from typing import Any

from tocha.figures.plots import png, pyplot


def plot_history(values: list[tuple[int, float, str]], metric: str, higher: bool = True) -> bytes:
    """Each finished trial's validation `metric` by trial number (pruned ones hollow), and the best
    so far as a step line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    best, line = None, []
    for number, value, state in values:
        ax.scatter([number], [value], facecolors="none" if state == "PRUNED" else "tab:blue",
                   edgecolors="tab:blue", s=28)  # fmt: skip
        if state == "COMPLETE" and (best is None or (value > best if higher else value < best)):
            best = value
        line.append(best)
    ax.step([n for n, _, _ in values], line, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("Optimisation history (hollow: pruned)")
    ax.legend()
    return png(fig)


def plot_parameters(trials: list[dict[str, Any]], names: list[str], logs: set[str], metric: str) -> bytes:
    """The validation metric against each parameter, one panel each (a log axis where it was
    drawn on one; a choice's values as categories)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        points = [(t["params"][name], t["value"]) for t in trials if name in t["params"]]
        xs = [p for p, _ in points]
        if all(isinstance(x, int | float) for x in xs):
            ax.scatter(xs, [v for _, v in points], s=20)
            if name in logs:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.scatter([labels.index(str(x)) for x in xs], [v for _, v in points], s=20)
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_xlabel(name)
        ax.set_ylabel(f"validation {metric}")
    fig.suptitle("Validation metric against each parameter")
    return png(fig)


def plot_importances(importances: dict[str, float]) -> bytes:
    """Optuna's parameter importances (fANOVA), largest first."""
    plt = pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (share of the validation metric's variance)")
    ax.set_title("Parameter importances")
    return png(fig)
