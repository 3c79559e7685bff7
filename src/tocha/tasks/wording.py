"""How a task's results are worded and drawn: the epoch and done lines, compare's columns and
verdicts, a run's figures and `tocha evaluate`'s report. `Task` takes these from `TaskWording`; a
task of its own overrides the words where the defaults (its primary metric as a plain number) do
not fit. Torch and matplotlib are imported only inside the methods that draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tocha.tasks.results import Evaluation

if TYPE_CHECKING:
    import torch


class TaskWording:
    """The words and pictures of a task's results (the `Task` base holds the class attributes
    read here: `primary`, `result_figure`)."""

    primary: ClassVar[str]
    result_figure: ClassVar[tuple[str, str]]

    def format(self, metric: str, value: float) -> str:
        """One metric's value as the task writes it (accuracy in %, others as numbers)."""
        return f"{value:.4g}"

    def headline(self, evaluation: Evaluation) -> str:
        """The done line's and evaluate's summary of a split."""
        return ", ".join(f"{m} {self.format(m, v)}" for m, v in evaluation.metrics().items())

    def epoch_scores(self, row: dict[str, float], split: str) -> str:
        """An epoch line's scores of `split` (train, test) beside its loss."""
        return f"{self.primary} {self.format(self.primary, row[f'{split}_{self.primary}'])}"

    def score_text(self, value: float) -> str:
        """`compare`'s and `export`'s words for a primary test metric."""
        return f"test {self.primary} {self.format(self.primary, value)}"

    def score_column(self, split: str = "test") -> tuple[str, float, int]:
        """compare's table: a split's score column's header, the factor its numbers are shown at, and
        their decimals."""
        return f"{split} {self.primary} (mean ± std)", 1.0, 4

    def failed_to_learn(self, mean: float, classes: int) -> str:
        """A note for a compared cell no better than guessing, or ""."""
        return ""

    def classes_counted(self, classes: list[str]) -> int:
        """summary.json's `classes`: how many the run tells apart (chance level is 1 / classes)."""
        return len(classes)

    def figure_files(self) -> tuple[str, ...]:
        """The files `run_figures` writes into a run folder."""
        return ("curves.png", self.result_figure[0]) if self.result_figure[0] else ("curves.png",)

    def run_figures(self, history: list[dict[str, float]], final: Evaluation, classes: list[str],
                    title: str, *, kept_epoch: int = 0) -> dict[str, bytes]:  # fmt: skip
        """A finished run's figures (PNG bytes by file name): learning curves of the loss and the
        primary metric (the kept epoch marked), and the task's picture of its results on the test
        split."""
        from tocha.figures.plots import plot_curves

        scale, label = self.curve_axis()
        curves = plot_curves(history, title, self.primary, scale, label=label, kept_epoch=kept_epoch)
        figures = {"curves.png": curves}
        picture = self.result_picture(final, classes, f"{title}: test {self.picture_caption(final)}")
        if picture is not None:
            figures[self.result_figure[0]] = picture
        return figures

    def curve_axis(self) -> tuple[float, str]:
        """How the primary metric is drawn: the factor and the axis label."""
        return 1.0, self.primary

    def result_picture(self, evaluation: Evaluation, classes: list[str], title: str) -> bytes | None:
        """The picture of a split's results (`result_figure`), PNG bytes; None for none."""
        return None

    def picture_caption(self, evaluation: Evaluation) -> str:
        """The result picture's words on the split's score."""
        return self.headline(evaluation)

    def report(self, evaluation: Evaluation, classes: list[str], out_dir: Path, title: str,
               *, images: torch.Tensor | None = None) -> dict[str, Any]:  # fmt: skip
        """`tocha evaluate`'s record (evaluation.json) of a split, its picture drawn into `out_dir`."""
        picture = self.result_picture(evaluation, classes, f"{title}: {self.picture_caption(evaluation)}")
        if picture is not None:
            from tocha.files import atomic_write

            atomic_write(out_dir / self.result_figure[0], lambda f: f.write(picture))
        return {"samples": evaluation.samples, **evaluation.metrics()}

    def report_text(self, evaluation: Evaluation, classes: list[str]) -> str:
        """What `tocha evaluate` prints below its headline ("" for nothing)."""
        return ""
