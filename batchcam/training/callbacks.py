"""Hooks through which the CLI and the workers observe, persist and stop a training run."""

from __future__ import annotations

from pathlib import Path

from batchcam.training.progress import EpochMetrics, Progress
from batchcam.training.state import TrainingState


class Callback:
    """Override what you need; every method is called from the training loop's thread."""

    def on_progress(self, progress: Progress) -> None:
        """After every optimisation step and when a phase begins (keep it cheap)."""

    def on_epoch_end(self, metrics: EpochMetrics, progress: Progress) -> None:
        """After an epoch's evaluation."""

    def on_checkpoint(self, state: TrainingState) -> None:
        """Persist a resumable snapshot (after every epoch, every ``checkpoint_every_steps``, on stop)."""

    def should_stop(self) -> bool:
        """Checked between steps: return True to stop cooperatively (a checkpoint is written first)."""
        return False


class CheckpointToFile(Callback):
    """Keeps the latest checkpoint in one file (atomically replaced)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_checkpoint(self, state: TrainingState) -> None:
        state.save(self.path)
