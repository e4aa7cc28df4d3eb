"""A training job as ``GET /v1/jobs/{id}`` shows it, its per-epoch history and its stream's events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from batchcam_client.resources.base import Failure, Resource, RunState
from batchcam_client.spec import StoredJobSpec

JobState = RunState


class JobProgress(Resource):
    phase: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = None
    elapsed_seconds: float | None = None
    eta_seconds: float | None = None
    loss: float | None = None


class JobLinks(Resource):
    job: str
    events: str
    metrics: str
    cancel: str
    model: str | None = None


class Job(Resource):
    id: uuid.UUID
    state: JobState
    terminal: bool
    phase: str | None
    progress: JobProgress
    latest_metrics: dict[str, Any] | None
    failure: Failure | None
    attempt: int
    max_attempts: int
    cancel_requested: bool
    model_id: uuid.UUID | None
    spec: StoredJobSpec
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    links: JobLinks


class EpochRecord(Resource):
    epoch: int
    recorded_at: datetime
    metrics: dict[str, Any]


class JobMetrics(Resource):
    job_id: uuid.UUID
    epochs: list[EpochRecord]


class JobEvent(Resource):
    """One Server-Sent Event: stored ones (``state``, ``epoch``, ``checkpoint``, ``warning``) have an
    ``id`` to resume after; live ``progress`` (and a final ``unauthorized``) have none."""

    id: int | None
    type: str
    data: dict[str, Any]

    @property
    def state(self) -> JobState | None:
        """The state this event moved the job to (``state`` events only)."""
        value = self.data.get("state") if self.type == "state" else None
        return JobState(value) if isinstance(value, str) and value in JobState._value2member_map_ else None

    @property
    def progress(self) -> JobProgress | None:
        return JobProgress.model_validate(self.data) if self.type == "progress" else None

    @property
    def ends_stream(self) -> bool:
        state = self.state
        return (state is not None and state.terminal) or self.type == "unauthorized"
