"""Delivering training jobs through their rows: claim, heartbeat, finish, cancel, reap (design §5).

Every transition is one conditional UPDATE, so two workers, a duplicate broker message or a reaper
racing a slow heartbeat can never both win. Times come from the caller's clock (hosts run NTP);
leases are long (minutes) compared with any skew.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from persistence.job_states import LEASED_STATES, FailureReason, JobState
from persistence.models import Job, JobEpoch, JobEvent
from persistence.resend_schedule import touch_due_rows


@dataclass(frozen=True)
class Lease:
    """A worker's exclusive right to run one attempt of one job until ``expires_at``."""

    job_id: uuid.UUID
    owner: str
    attempt: int
    expires_at: datetime


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
    session.add(JobEvent(job_id=job_id, type=type_, data=data))


def claim(
    session: Session, job_id: uuid.UUID, owner: str, lease_for: timedelta, now: datetime
) -> Lease | None:
    """Take a queued job. ``None``: someone else holds it, it ended, or it is not queued.

    The last attempt's progress is cleared: until this attempt reports, its position is unknown.
    """
    expires_at = now + lease_for
    attempt = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.QUEUED)
        .values(
            state=JobState.RUNNING,
            attempt=Job.attempt + 1,
            progress={},
            lease_owner=owner,
            lease_expires_at=expires_at,
            started_at=now,
            updated_at=now,
        )
        .returning(Job.attempt)
    ).scalar_one_or_none()
    if attempt is None:
        return None
    record_event(session, job_id, "state", state=JobState.RUNNING, attempt=attempt, worker=owner)
    return Lease(job_id=job_id, owner=owner, attempt=attempt, expires_at=expires_at)


def _owned(lease: Lease) -> Any:
    return (Job.id == lease.job_id) & (Job.lease_owner == lease.owner) & (Job.attempt == lease.attempt)


def heartbeat(
    session: Session,
    lease: Lease,
    lease_for: timedelta,
    now: datetime,
    progress: dict[str, Any] | None = None,
) -> HeartbeatAnswer:
    """Extend the lease (and store progress) if still ours; say whether a cancel was requested."""
    values: dict[str, Any] = {"lease_expires_at": now + lease_for, "updated_at": now}
    if progress is not None:
        values["progress"] = progress
        values["phase"] = progress.get("phase")
    state = session.execute(
        update(Job).where(_owned(lease), Job.state.in_(LEASED_STATES)).values(**values).returning(Job.state)
    ).scalar_one_or_none()
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
    done = session.execute(
        update(Job)
        .where(_owned(lease), Job.state.in_(LEASED_STATES))
        .values(
            state=state,
            failure_reason=reason,
            failure_message=message,
            model_id=model_id,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    if done is not None:
        record_event(session, lease.job_id, "state", state=state, reason=reason, message=message)
    return done is not None


def release_for_retry(session: Session, lease: Lease, now: datetime, reason: str) -> bool:
    """Give a job back to the queue after a transient failure (the attempt still counts)."""
    done = session.execute(
        update(Job)
        .where(_owned(lease), Job.state == JobState.RUNNING)
        .values(state=JobState.QUEUED, phase=None, lease_owner=None, lease_expires_at=None, updated_at=now)
        .returning(Job.id)
    ).scalar_one_or_none()
    if done is not None:
        record_event(session, lease.job_id, "state", state=JobState.QUEUED, retry_reason=reason)
    return done is not None


def record_checkpoint(session: Session, lease: Lease, key: str, now: datetime, **position: Any) -> bool:
    """Point the job at an uploaded checkpoint (uploaded first, recorded second).

    Idempotent: a record whose commit went through although the connection dropped before the
    answer (so the worker writes it again) is not recorded twice.
    """
    held_key = session.scalar(
        select(Job.checkpoint_key).where(_owned(lease), Job.state.in_(LEASED_STATES)).with_for_update()
    )
    if held_key == key:
        return True
    if not _update_held(session, lease, checkpoint_key=key, updated_at=now):
        return False
    record_event(session, lease.job_id, "checkpoint", key=key, **position)
    return True


def record_epoch(session: Session, lease: Lease, epoch: int, metrics: dict[str, Any], now: datetime) -> bool:
    """Store one epoch's metrics (a resumed attempt overwrites the epoch it repeats).

    Idempotent as ``record_checkpoint``: the same epoch with the same metrics is recorded once.
    """
    stored = session.get(JobEpoch, (lease.job_id, epoch))
    if stored is not None and stored.metrics == metrics and _holds(session, lease):
        return True
    if not _update_held(session, lease, latest_metrics=metrics, updated_at=now):
        return False
    session.merge(JobEpoch(job_id=lease.job_id, epoch=epoch, metrics=metrics, recorded_at=now))
    record_event(session, lease.job_id, "epoch", epoch=epoch, metrics=metrics)
    return True


def _update_held(session: Session, lease: Lease, **values: Any) -> bool:
    """Write ``values`` to the job if the lease is still ours: one conditional UPDATE."""
    updated = session.execute(
        update(Job).where(_owned(lease), Job.state.in_(LEASED_STATES)).values(**values).returning(Job.id)
    ).scalar_one_or_none()
    return updated is not None


def _holds(session: Session, lease: Lease) -> bool:
    """Whether the lease is still ours (locks the row until the transaction ends)."""
    held = session.scalar(select(Job.id).where(_owned(lease), Job.state.in_(LEASED_STATES)).with_for_update())
    return held is not None


def request_cancel(session: Session, job: Job, now: datetime) -> None:
    """Queued → cancelled at once; running → cancelling (the worker confirms); otherwise unchanged."""
    if job.state == JobState.QUEUED:
        ended = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.state == JobState.QUEUED)
            .values(state=JobState.CANCELLED, cancel_requested_at=now, finished_at=now, updated_at=now)
            .returning(Job.id)
        ).scalar_one_or_none()
        if ended is not None:
            record_event(session, job.id, "state", state=JobState.CANCELLED)
            return
    moved = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == JobState.RUNNING)
        .values(state=JobState.CANCELLING, cancel_requested_at=now, updated_at=now)
        .returning(Job.id)
    ).scalar_one_or_none()
    if moved is not None:
        record_event(session, job.id, "state", state=JobState.CANCELLING)


def reap_expired_leases(session: Session, now: datetime) -> ReapResult:
    """Jobs whose worker stopped heartbeating: re-queue, or fail after ``max_attempts``.

    A job that was ``cancelling`` when its worker vanished is ``cancelled``: nothing runs it anymore.
    Each row is written by a conditional UPDATE on what was read, so a row that changed in between
    (its worker finished or renewed, a cancel came) is left for the next sweep. Postgres also locks
    the rows read; embedded SQLite cannot, and would otherwise overwrite a just-committed success.
    """
    expired = session.execute(
        select(Job.id, Job.state, Job.attempt, Job.max_attempts, Job.lease_owner)
        .where(Job.state.in_(LEASED_STATES), Job.lease_expires_at < now)
        .with_for_update(skip_locked=True)
    ).all()
    result = ReapResult(requeued=[], failed=[], cancelled=[])
    for job_id, state, attempt, max_attempts, lost_owner in expired:
        values: dict[str, Any]
        if state == JobState.CANCELLING:
            values, taken_into = {"state": JobState.CANCELLED, "finished_at": now}, result.cancelled
        elif attempt >= max_attempts:
            values = {
                "state": JobState.FAILED,
                "finished_at": now,
                "failure_reason": FailureReason.WORKER_LOST,
                "failure_message": f"the worker stopped responding {attempt} times (attempts exhausted)",
            }
            taken_into = result.failed
        else:
            values, taken_into = {"state": JobState.QUEUED, "phase": None}, result.requeued
        taken = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.state == state,
                Job.attempt == attempt,
                Job.lease_owner == lost_owner,
                Job.lease_expires_at < now,
            )
            .values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
            .returning(Job.id)
        ).scalar_one_or_none()
        if taken is None:
            continue
        taken_into.append(job_id)
        record_event(session, job_id, "state", state=values["state"], reaped_from=lost_owner, attempt=attempt)
    return result


def stale_queued_jobs(session: Session, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """Queued jobs nobody claimed whose message is due again (``persistence.resend_schedule``)."""
    return touch_due_rows(session, Job, JobState.QUEUED, now, period)
