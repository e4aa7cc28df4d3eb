"""The sweep's side of explanation delivery: leases that ran out, queued rows nobody claimed.

A worker that was killed stops renewing its lease; once the lease has expired its explanation goes
back to ``queued`` (or, after ``max_attempts`` attempts, to ``failed`` with ``worker_lost``). A queued
explanation whose broker message was lost is found by its age. The caller sends the messages and
removes the abandoned attempts' shards (no result can ever name them) only after the transaction has
committed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from persistence import leases
from persistence.models import Explanation
from persistence.resend_schedule import touch_due_rows
from persistence.states import JobState
from persistence.webhooks.outbox import explanations_ended


def _lost_message(attempt: int, max_attempts: int) -> str:
    return f"the explain worker stopped responding (attempt {attempt} of {max_attempts})"


def reap_expired_explanations(session: Session, now: datetime, max_attempts: int) -> leases.Reaped:
    """Explanations whose lease expired: re-queue, or fail with ``worker_lost``; one that was being
    cancelled is ``cancelled`` (``persistence.leases.reap_expired``)."""
    reaped = leases.reap_expired(session, Explanation, leases.ExpiryRules(max_attempts, _lost_message), now)
    explanations_ended(session, [ended.row_id for ended in reaped.failed + reaped.cancelled], now)
    return reaped


def stale_queued_explanations(session: Session, now: datetime, period: timedelta) -> list[uuid.UUID]:
    """Queued explanations whose message is due again (``persistence.resend_schedule``)."""
    return touch_due_rows(session, Explanation, JobState.QUEUED, now, period)
