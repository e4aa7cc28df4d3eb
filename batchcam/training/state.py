"""A resumable training state: weights, optimiser, RNG, position in the run, history so far."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped.

    ``epoch`` is the epoch in progress (0-based) and ``batches_done`` how many of its batches are
    done; after the last batch of an epoch the state points at the start of the next one.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    epoch: int
    batches_done: int
    global_step: int
    elapsed_s: float
    rng_cpu: torch.Tensor
    rng_cuda: list[torch.Tensor] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_totals: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Written to a temporary name then renamed, so a crash never leaves half a checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(asdict(self), partial)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        # weights_only: our own checkpoints hold tensors and plain containers only.
        return cls(**torch.load(path, map_location="cpu", weights_only=True))
