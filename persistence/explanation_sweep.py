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

from sqlalchemy import select
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
    cancelled is ``cancelled`` (nothing runs it anymore)."""
    expired = session.scalars(
        select(Explanation)
        .where(Explanation.state.in_(LEASED_EXPLANATION_STATES), Explanation.lease_expires_at < now)
        .with_for_update(skip_locked=True)  # a second sweep running at once skips what we hold
    ).all()
    reaped = ExplanationReap(requeued=[], failed=[], cancelled=[])
    for explanation in expired:
        abandoned = AbandonedAttempt(explanation.tenant_id, explanation.id, explanation.attempt)
        if explanation.state == ExplanationState.CANCELLING:
            explanation.state, explanation.finished_at = ExplanationState.CANCELLED, now
            reaped.cancelled.append(abandoned)
        elif explanation.attempt >= max_attempts:
            explanation.state, explanation.finished_at = ExplanationState.FAILED, now
            explanation.failure_reason = FailureReason.WORKER_LOST
            explanation.failure_message = (
                f"the explain worker stopped responding (attempt {explanation.attempt} of {max_attempts})"
            )
            reaped.failed.append(abandoned)
        else:
            explanation.state = ExplanationState.QUEUED
            reaped.requeued.append(abandoned)
        explanation.lease_owner, explanation.lease_expires_at, explanation.updated_at = None, None, now
    return reaped


def stale_queued_explanations(session: Session, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """Queued explanations whose message is due again (``persistence.resend_schedule``)."""
    return touch_due_rows(session, Explanation, ExplanationState.QUEUED, now, period)
