"""A resumable training state: weights, optimiser, RNG, position in the run, history so far."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from batchcam.errors import ConfigError


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped.

    ``epoch`` is the epoch in progress (0-based) and ``batches_done`` how many of its batches are
    done; after the last batch of an epoch the state points at the start of the next one.
    ``data_fingerprint`` is the training split's; it is ``""`` in checkpoints written before it
    was recorded.
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
    data_fingerprint: str = ""

    def save(self, path: Path) -> None:
        """Written to a temporary name then renamed, so a crash never leaves half a checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(asdict(self), partial)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        """A checkpoint written by :meth:`save`; anything else is a :class:`ConfigError` naming the file."""
        try:
            # weights_only: our own checkpoints hold tensors and plain containers only.
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # damaged or foreign files fail in many ways (UnpicklingError, EOF, ...)
            raise _not_a_checkpoint(path, _first_line(error)) from error
        return cls._from_dict(data, path)

    @classmethod
    def _from_dict(cls, data: object, path: Path) -> TrainingState:
        if not isinstance(data, dict):
            raise _not_a_checkpoint(path, f"it holds a {type(data).__name__}, not a training state")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing, unknown = sorted(required - data.keys()), sorted(set(data) - names, key=str)
        if missing or unknown:
            found = (
                f"{label} keys: {', '.join(map(str, keys))}"
                for label, keys in (("missing", missing), ("unknown", unknown))
                if keys
            )
            raise _not_a_checkpoint(path, "; ".join(found))
        if not isinstance(data["rng_cpu"], torch.Tensor) or not isinstance(data["model"], dict):
            raise _not_a_checkpoint(path, "its model weights or RNG state have the wrong type")
        return cls(**data)


def _not_a_checkpoint(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"{path} is not a usable Batch-CAM training checkpoint ({reason})", code="invalid_checkpoint"
    )


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:160]}" if lines else type(error).__name__
