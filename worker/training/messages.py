"""What a training child process tells its supervisor, and what it is asked to do.

Messages cross a multiprocessing queue between two processes of ours (never user data), so plain
dataclasses suffice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persistence.settings import Settings
from persistence.states import FailureReason


@dataclass(frozen=True)
class TrainingRequest:
    """Everything the child needs; it never reads the database."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int
    spec: dict[str, Any]
    dataset_key: str | None  # uploaded dataset in the object store; None for a built-in
    checkpoint_key: str | None  # resume from here
    model_id: uuid.UUID  # artifacts of this attempt go under this id
    settings: Settings
    work_dir: Path


@dataclass(frozen=True)
class ProgressUpdate:
    progress: dict[str, Any]


@dataclass(frozen=True)
class EpochFinished:
    epoch: int
    metrics: dict[str, Any]


@dataclass(frozen=True)
class CheckpointUploaded:
    key: str
    epoch: int
    step: int


@dataclass(frozen=True)
class TrainingSucceeded:
    model_id: uuid.UUID
    spec: dict[str, Any]
    summary: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)  # artifact name → object key


@dataclass(frozen=True)
class TrainingStopped:
    """The trainer stopped before the end: ``cancelled`` or ``timed_out``, after a checkpoint."""

    outcome: str


@dataclass(frozen=True)
class TrainingFailed:
    reason: FailureReason
    message: str
    retryable: bool  # transient infrastructure trouble: another attempt may succeed


ChildMessage = (
    ProgressUpdate | EpochFinished | CheckpointUploaded | TrainingSucceeded | TrainingStopped | TrainingFailed
)
