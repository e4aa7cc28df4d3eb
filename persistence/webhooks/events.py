"""The events a webhook endpoint can subscribe to, and their payloads (docs/ARCHITECTURE.md §7.5).

Payloads are thin and stable, in the envelope Standard Webhooks recommends: ``type``, ``timestamp``
and ``data`` naming the resource; a receiver reads the resource itself for anything more.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from persistence.states import JobState


class EventType(StrEnum):
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    JOB_EPOCH = "job.epoch"
    EXPLANATION_SUCCEEDED = "explanation.succeeded"
    EXPLANATION_FAILED = "explanation.failed"
    EXPLANATION_CANCELLED = "explanation.cancelled"


_ENDED = {
    "job": {
        JobState.SUCCEEDED: EventType.JOB_SUCCEEDED,
        JobState.FAILED: EventType.JOB_FAILED,
        JobState.CANCELLED: EventType.JOB_CANCELLED,
    },
    "explanation": {
        JobState.SUCCEEDED: EventType.EXPLANATION_SUCCEEDED,
        JobState.FAILED: EventType.EXPLANATION_FAILED,
        JobState.CANCELLED: EventType.EXPLANATION_CANCELLED,
    },
}


def ended_event(kind: str, state: str) -> EventType | None:
    """The event a ``job`` or ``explanation`` reaching ``state`` sends; None: not an end."""
    return _ENDED[kind].get(JobState(state))


def envelope(event: EventType, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": str(event), "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


def ended_data(
    row_id: object, state: str, model_id: object | None, reason: str | None, message: str | None
) -> dict[str, Any]:
    """``data`` of a ``job.*``/``explanation.*`` end: the row, its state, its model, its failure."""
    failure = None if reason is None else {"reason": reason, "message": message}
    return {
        "id": str(row_id),
        "state": state,
        "model_id": None if model_id is None else str(model_id),
        "failure": failure,
    }


def epoch_data(job_id: object, epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(job_id), "state": str(JobState.RUNNING), "epoch": epoch, "metrics": metrics}
