"""Training jobs' side of the lease engine (``persistence.leases``): claim, heartbeat, finish, give
back, cancel, reap, plus what only jobs record while held (events, epochs, checkpoints;
docs/ARCHITECTURE.md §6, §7.2).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from persistence import leases
from persistence.models import Job, JobEpoch, JobEvent
from persistence.resend_schedule import touch_due_rows
from persistence.states import LEASED_STATES, FailureReason, JobState
from persistence.webhooks.outbox import job_event_recorded

_RUNNING = frozenset({JobState.RUNNING})
EXPIRY = leases.ExpiryRules(
    max_attempts=Job.max_attempts,
    lost_message=lambda attempt, _: f"the worker stopped responding {attempt} times (attempts exhausted)",
    requeue_values={"phase": None},
)


@dataclass(frozen=True)
class Lease:
    """A worker's exclusive right to run one attempt of one job until ``expires_at``."""

    job_id: uuid.UUID
    owner: str
    attempt: int
    expires_at: datetime

    @property
    def row_id(self) -> uuid.UUID:
        return self.job_id


@dataclass(frozen=True)
class HeartbeatAnswer:
    still_owner: bool  # False: the lease was lost (reaped, or the job ended) — stop working
    cancel_requested: bool


@dataclass(frozen=True)
class ReapResult:
    requeued: list[uuid.UUID]  # enqueue these again (after commit)
    failed: list[uuid.UUID]
    cancelled: list[uuid.UUID]


def record_event(session: Session, job_id: uuid.UUID, type_: str, **data: Any) -> None:
    """Every job change is one of these: an end or an epoch also writes its webhook deliveries (the
    outbox, docs/ARCHITECTURE.md §7.5), which commit or roll back with the event."""
    session.add(JobEvent(job_id=job_id, type=type_, data=data))
    job_event_recorded(session, job_id, type_, data)


def claim(
    session: Session, job_id: uuid.UUID, owner: str, lease_for: timedelta, now: datetime
) -> Lease | None:
    """Take a queued job. ``None``: someone else holds it, it ended, or it is not queued.

    The last attempt's progress is cleared: until this attempt reports, its position is unknown.
    """
    claimed = leases.claim(session, Job, job_id, owner, lease_for, now, progress={})
    if claimed is None:
        return None
    record_event(session, job_id, "state", state=JobState.RUNNING, attempt=claimed.attempt, worker=owner)
    return Lease(job_id=job_id, owner=owner, attempt=claimed.attempt, expires_at=now + lease_for)


def heartbeat(
    session: Session,
    lease: Lease,
    lease_for: timedelta,
    now: datetime,
    progress: dict[str, Any] | None = None,
) -> HeartbeatAnswer:
    """Extend the lease (and store progress) if still ours; say whether a cancel was requested."""
    values = {} if progress is None else {"progress": progress, "phase": progress.get("phase")}
    state = leases.renew(session, Job, lease, lease_for, now, **values)
    if state is None:
        return HeartbeatAnswer(still_owner=False, cancel_requested=False)
    return HeartbeatAnswer(still_owner=True, cancel_requested=state == JobState.CANCELLING)


def finish(
    session: Session,
    lease: Lease,
    state: JobState,
    now: datetime,
    *,
    reason: FailureReason | None = None,
    message: str | None = None,
    model_id: uuid.UUID | None = None,
) -> bool:
    """End the attempt we hold with a terminal state. False: the lease was no longer ours."""
    values = {"failure_reason": reason, "failure_message": message, "model_id": model_id}
    done = leases.end_held(session, Job, lease, LEASED_STATES, state, now, **values)
    if done:
        record_event(session, lease.job_id, "state", state=state, reason=reason, message=message)
    return done


def release_for_retry(session: Session, lease: Lease, now: datetime, reason: str) -> bool:
    """Give a job back to the queue after a transient failure (the attempt still counts)."""
    done = leases.end_held(session, Job, lease, _RUNNING, JobState.QUEUED, now, phase=None)
    if done:
        record_event(session, lease.job_id, "state", state=JobState.QUEUED, retry_reason=reason)
    return done


def record_checkpoint(session: Session, lease: Lease, key: str, now: datetime, **position: Any) -> bool:
    """Point the job at an uploaded checkpoint (uploaded first, recorded second).

    Idempotent: a record whose commit went through although the connection dropped before the
    answer (so the worker writes it again) is not recorded twice.
    """
    held_key = session.scalar(select(Job.checkpoint_key).where(leases.held(Job, lease)).with_for_update())
    if held_key == key:
        return True
    if not leases.update_held(session, Job, lease, checkpoint_key=key, updated_at=now):
        return False
    record_event(session, lease.job_id, "checkpoint", key=key, **position)
    return True


def record_epoch(session: Session, lease: Lease, epoch: int, metrics: dict[str, Any], now: datetime) -> bool:
    """Store one epoch's metrics (a resumed attempt overwrites the epoch it repeats).

    Idempotent as ``record_checkpoint``: the same epoch with the same metrics is recorded once.
    """
    stored = session.get(JobEpoch, (lease.job_id, epoch))
    if stored is not None and stored.metrics == metrics and leases.holds(session, Job, lease):
        return True
    if not leases.update_held(session, Job, lease, latest_metrics=metrics, updated_at=now):
        return False
    session.merge(JobEpoch(job_id=lease.job_id, epoch=epoch, metrics=metrics, recorded_at=now))
    record_event(session, lease.job_id, "epoch", epoch=epoch, metrics=metrics)
    return True


def request_cancel(session: Session, job: Job, now: datetime) -> None:
    """Queued → cancelled at once; running → cancelling (the worker confirms); otherwise unchanged."""
    state = leases.request_cancel(session, Job, job.id, now, cancel_requested_at=now)
    if state is not None:
        record_event(session, job.id, "state", state=state)


def reap_expired_leases(session: Session, now: datetime) -> ReapResult:
    """Jobs whose worker stopped heartbeating: re-queue, or fail after ``max_attempts``; a job that was
    ``cancelling`` when its worker vanished is ``cancelled`` (``persistence.leases.reap_expired``)."""
    reaped = leases.reap_expired(session, Job, EXPIRY, now)
    for taken in reaped.every():
        lost = {"reaped_from": taken.lost_owner, "attempt": taken.attempt}
        record_event(session, taken.row_id, "state", state=taken.state, **lost)
    groups = (reaped.requeued, reaped.failed, reaped.cancelled)
    return ReapResult(*([taken.row_id for taken in group] for group in groups))


def stale_queued_jobs(session: Session, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """Queued jobs nobody claimed whose message is due again (``persistence.resend_schedule``)."""
    return touch_due_rows(session, Job, JobState.QUEUED, now, period)
