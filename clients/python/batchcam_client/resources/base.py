"""What every response model shares: unknown members are ignored, so a server that adds a field does
not break a deployed client (the drift test in tests/client makes each new field a decision)."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class RunState(StrEnum):
    """A job's or an explanation's state (the service publishes one enum under two names)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


class FailureReason(StrEnum):
    INVALID_INPUT = "invalid_input"
    NAN_LOSS = "nan_loss"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    INFRASTRUCTURE = "infrastructure"
    INTERNAL_ERROR = "internal_error"


class Failure(Resource):
    reason: FailureReason
    message: str | None = None


class PageLinks(Resource):
    next: str | None = None


class Page(Resource, Generic[T]):
    """One cursor page, newest first; follow ``links.next`` (the client's ``list`` methods do)."""

    items: list[T]
    next_cursor: str | None
    links: PageLinks
