"""What one app instance works with, fixed when the app is built (no module-level mutable state)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.explanations.limits import ExplanationLimits
from api.explanations.ready_models import ReadyModels
from api.explanations.waiting import WaitSlots
from api.http.verified_keys import VerifiedKeys
from batchcam.spec.limits import UploadLimits
from persistence.models import utcnow
from persistence.notifications import ChangeListener, Channel
from persistence.objects import ObjectStore
from persistence.settings import Settings
from persistence.wakeups import WakeExplanation

EnqueueTraining = Callable[[uuid.UUID], None]
BrokerCheck = Callable[[], None]  # raises when the broker cannot be reached


@dataclass(frozen=True)
class StreamTimings:
    """How often an event stream polls the database and how long it may stay silent."""

    poll_seconds: float = 0.5
    heartbeat_seconds: float = 15.0
    client_retry_ms: int = 2000
    key_recheck_seconds: float = 5.0  # how often a stream checks that its API key is not revoked


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    object_store: ObjectStore
    enqueue_training: EnqueueTraining
    check_broker: BrokerCheck | None
    upload_limits: UploadLimits
    stream_timings: StreamTimings = field(default_factory=StreamTimings)
    clock: Callable[[], datetime] = utcnow
    enqueue_explanation: WakeExplanation | None = None  # None: this API instance takes no explanations
    explanation_limits: ExplanationLimits = field(default_factory=ExplanationLimits)
    # Wakes ?wait and event streams when a row changes (Postgres); never live on SQLite: they poll.
    changes: ChangeListener = field(default_factory=lambda: ChangeListener(None))
    ready_models: ReadyModels = field(default_factory=ReadyModels)
    wait_slots: WaitSlots = field(init=False)
    verified_keys: VerifiedKeys = field(init=False)

    def __post_init__(self) -> None:
        # Frozen: set once here, so the slots always match the limits the context was built with, and
        # the key cache forgets exactly what this context's listener hears revoked.
        object.__setattr__(self, "wait_slots", WaitSlots(self.explanation_limits.max_waiting_requests))
        keys = VerifiedKeys(self.settings.key_cache_seconds, is_live=lambda: self.changes.live)
        self.changes.subscribe(Channel.KEY_REVOKED, keys.forget)
        object.__setattr__(self, "verified_keys", keys)


def context_of(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


async def api_context(request: Request) -> ApiContext:
    """``Context``: async, because FastAPI runs a plain-def dependency in the threadpool (a hop on
    every request, for a lookup)."""
    return context_of(request)


Context = Annotated[ApiContext, Depends(api_context)]
