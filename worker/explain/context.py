"""What an explain attempt works with, and how it can end (shared by the one-row and batched paths)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS, UploadLimits
from persistence.explanations.batching import BatchLimits
from persistence.models import utcnow
from persistence.objects import ObjectStore
from persistence.settings import DEFAULT_EXPLAIN_LEASE_SECONDS
from persistence.states import JobState
from persistence.wakeups import WakeExplanation
from worker.explain.batches import DEFAULT_BATCH_SIZE
from worker.explain.cache import ExplainerCache
from worker.explain.ended_here import EndedHere
from worker.explain.inputs import SplitCache, new_split_cache
from worker.explain.threads import TorchThreads


def worker_identity() -> str:
    """This process as a lease owner, e.g. ``host:pid`` (shown to operators, unique per process)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ExplainOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"  # given back to the queue after transient trouble: send it again later
    CANCELLED = "cancelled"  # stopped as the user asked
    NOT_CLAIMED = "not_claimed"  # running elsewhere or already ended (a duplicate delivery)


# Outcomes after which the row never runs again (a retry puts it back in the queue).
FINAL_OUTCOMES = frozenset({ExplainOutcome.SUCCEEDED, ExplainOutcome.FAILED, ExplainOutcome.CANCELLED})

# What a row's end, as the lease functions report it, means for the task.
ENDINGS: dict[JobState | None, ExplainOutcome] = {
    JobState.SUCCEEDED: ExplainOutcome.SUCCEEDED,
    JobState.FAILED: ExplainOutcome.FAILED,
    JobState.QUEUED: ExplainOutcome.RETRY,
    JobState.CANCELLED: ExplainOutcome.CANCELLED,
}


@dataclass(frozen=True)
class ExplainContext:
    sessions: sessionmaker[Session]
    store: ObjectStore
    explainers: ExplainerCache
    max_attempts: int = 3
    batch_size: int = DEFAULT_BATCH_SIZE
    clock: Callable[[], datetime] = field(default=utcnow)
    owner: str = field(default_factory=worker_identity)
    splits: SplitCache = field(default_factory=new_split_cache)  # pass one per process to keep it warm
    upload_limits: UploadLimits = DEFAULT_UPLOAD_LIMITS  # the deployment's (settings.upload_limits())
    lease_for: timedelta = timedelta(seconds=DEFAULT_EXPLAIN_LEASE_SECONDS)
    batching: BatchLimits = field(default_factory=BatchLimits)  # BatchLimits(max_requests=1): one at a time
    ended_here: EndedHere = field(default_factory=EndedHere)  # one per process: duplicates skip the claim
    threads: TorchThreads = field(default_factory=TorchThreads)  # small batches: one torch thread
    # Wakes a model again for queued rows a woken batch left behind (None: every row has its message).
    wake_model: WakeExplanation | None = None
