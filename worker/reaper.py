"""The periodic sweep: expired leases back to the queue (or failed), lost messages sent again.

Jobs and explanations are swept separately (each in its own transaction, with its own queue), and
messages are sent only after the transaction that re-queued the rows has committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.explanation_sweep import reap_expired_explanations, stale_queued_explanations
from persistence.job_leases import reap_expired_leases, stale_queued_jobs
from persistence.objects import ObjectStore
from worker.explain_cleanup import discard_attempt_maps

log = logging.getLogger(__name__)


def sweep(
    sessions: sessionmaker[Session],
    enqueue: Callable[[uuid.UUID], None],
    now: datetime,
    requeue_stale_after: timedelta,
) -> list[uuid.UUID]:
    """Returns the jobs sent again (after the transaction committed)."""
    with transaction(sessions) as session:
        reaped = reap_expired_leases(session, now)
        stale = stale_queued_jobs(session, now, requeue_stale_after)
    if reaped.failed:
        log.warning("jobs failed with worker_lost: %s", ", ".join(map(str, reaped.failed)))
    to_send = reaped.requeued + [job for job in stale if job not in reaped.requeued]
    for job_id in to_send:
        enqueue(job_id)
    return to_send


@dataclass(frozen=True)
class ExplanationSweep:
    """What sweeping explanations needs: their rows, their queue, their shards' store, the limits."""

    sessions: sessionmaker[Session]
    enqueue: Callable[[uuid.UUID], None]  # sends an explain message
    store: ObjectStore
    requeue_stale_after: timedelta
    max_attempts: int


def sweep_explanations(target: ExplanationSweep, now: datetime) -> list[uuid.UUID]:
    """Returns the explanations sent again; the reaped attempts' shards are removed afterwards."""
    with transaction(target.sessions) as session:
        reaped = reap_expired_explanations(session, now, target.max_attempts)
        stale = stale_queued_explanations(session, now, target.requeue_stale_after)
    if reaped.failed:
        failed = ", ".join(str(lost.explanation_id) for lost in reaped.failed)
        log.warning("explanations failed with worker_lost: %s", failed)
    requeued = [lost.explanation_id for lost in reaped.requeued]
    to_send = requeued + [explanation for explanation in stale if explanation not in requeued]
    try:
        for explanation_id in to_send:
            target.enqueue(explanation_id)
    finally:  # after sending (a slow store never delays a retry), and even if the broker failed
        for lost in reaped.requeued + reaped.failed + reaped.cancelled:
            discard_attempt_maps(target.store, lost.tenant_id, lost.explanation_id, lost.attempt)
    return to_send
