"""What the trainer reports while it runs: progress with ETA, and per-epoch metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Phase = Literal["train", "evaluate"]


@dataclass(frozen=True)
class Progress:
    """Where a run stands. ``step`` counts optimisation steps over the whole run."""

    phase: Phase
    epoch: int  # 0-based epoch being worked on
    epochs: int
    step: int
    total_steps: int
    elapsed_s: float
    loss: float | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 1.0

    @property
    def eta_s(self) -> float | None:
        """Remaining seconds at the average pace so far (None until a step has been timed)."""
        if self.step == 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s / self.step * (self.total_steps - self.step)


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's training averages and test-split evaluation.

    Names group by family (``*loss``, ``*accuracy``, ``*distance*``) so curves plot themselves.
    """

    epoch: int  # 1-based: the number of completed epochs
    train_loss: float
    train_cross_entropy_loss: float
    train_prototype_loss: float | None
    train_batchcam_loss: float | None
    train_accuracy: float
    test_accuracy: float
    test_cam_distance_l1: float
    test_cam_distance_l2: float
    test_cam_distance_ssim: float
    epoch_seconds: float
    train_annotation_loss: float | None = None  # the annotation modes' penalty (added later: last)

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)
