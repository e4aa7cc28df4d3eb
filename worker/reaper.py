"""The periodic sweep: expired leases back to the queue (or failed), lost messages sent again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.job_leases import reap_expired_leases, stale_queued_jobs

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
        stale = stale_queued_jobs(session, now - requeue_stale_after, now)
    if reaped.failed:
        log.warning("jobs failed with worker_lost: %s", ", ".join(map(str, reaped.failed)))
    to_send = reaped.requeued + [job for job in stale if job not in reaped.requeued]
    for job_id in to_send:
        enqueue(job_id)
    return to_send
