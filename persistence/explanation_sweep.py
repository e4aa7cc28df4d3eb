"""The sweep's side of explanation delivery: leases that ran out, queued rows nobody claimed.

A worker that was killed stops renewing its lease; once the lease has expired its explanation goes
back to ``queued`` (or, after ``max_attempts`` attempts, to ``failed`` with ``worker_lost``). A queued
explanation whose broker message was lost is found by its age. The caller sends the messages and
removes the abandoned attempts' shards only after the transaction has committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from persistence.explanation_states import LEASED_EXPLANATION_STATES, ExplanationState
from persistence.job_states import FailureReason
from persistence.models import Explanation
from persistence.resend_schedule import touch_due_rows


@dataclass(frozen=True)
class AbandonedAttempt:
    """An attempt taken back from its worker: no result can ever name its shards."""

    tenant_id: uuid.UUID
    explanation_id: uuid.UUID
    attempt: int


@dataclass(frozen=True)
class ExplanationReap:
    requeued: list[AbandonedAttempt]  # send these again (after commit)
    failed: list[AbandonedAttempt]
    cancelled: list[AbandonedAttempt]  # were cancelling when their worker vanished


def reap_expired_explanations(session: Session, now: datetime, max_attempts: int) -> ExplanationReap:
    """Explanations whose lease expired: re-queue, or fail with ``worker_lost``; one that was being
    cancelled is ``cancelled`` (nothing runs it anymore). Written as ``reap_expired_leases`` writes
    jobs: a conditional UPDATE on what was read, so a row that changed in between is left alone."""
    expired = session.execute(
        select(
            Explanation.id,
            Explanation.tenant_id,
            Explanation.state,
            Explanation.attempt,
            Explanation.lease_owner,
        )
        .where(Explanation.state.in_(LEASED_EXPLANATION_STATES), Explanation.lease_expires_at < now)
        .with_for_update(skip_locked=True)  # a second sweep running at once skips what we hold
    ).all()
    reaped = ExplanationReap(requeued=[], failed=[], cancelled=[])
    for explanation_id, tenant_id, state, attempt, lost_owner in expired:
        values: dict[str, object]
        if state == ExplanationState.CANCELLING:
            values, taken_into = {"state": ExplanationState.CANCELLED, "finished_at": now}, reaped.cancelled
        elif attempt >= max_attempts:
            values = {
                "state": ExplanationState.FAILED,
                "finished_at": now,
                "failure_reason": FailureReason.WORKER_LOST,
                "failure_message": (
                    f"the explain worker stopped responding (attempt {attempt} of {max_attempts})"
                ),
            }
            taken_into = reaped.failed
        else:
            values, taken_into = {"state": ExplanationState.QUEUED}, reaped.requeued
        taken = session.execute(
            update(Explanation)
            .where(
                Explanation.id == explanation_id,
                Explanation.state == state,
                Explanation.attempt == attempt,
                Explanation.lease_owner == lost_owner,
                Explanation.lease_expires_at < now,
            )
            .values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
            .returning(Explanation.id)
        ).scalar_one_or_none()
        if taken is not None:
            taken_into.append(AbandonedAttempt(tenant_id, explanation_id, attempt))
    return reaped


def stale_queued_explanations(session: Session, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """Queued explanations whose message is due again (``persistence.resend_schedule``)."""
    return touch_due_rows(session, Explanation, ExplanationState.QUEUED, now, period)
