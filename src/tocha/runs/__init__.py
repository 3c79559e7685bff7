"""Run folders: the files a run leaves (config, metrics, checkpoint, figures, summary) and their format."""

from tocha.runs.checkpoint import Checkpoint, TrainingState, read_checkpoint
from tocha.runs.folder import RunFolder
from tocha.runs.records import RunSummary

__all__ = ["Checkpoint", "RunFolder", "RunSummary", "TrainingState", "read_checkpoint"]
