"""The periodic sweep: expired leases back to the queue (or failed), lost messages sent again, and
what ended work left in the store removed.

Jobs and explanations are swept separately (each in its own transaction, with its own queue), and
messages are sent only after the transaction that re-queued the rows has committed. A message the
broker refuses is logged and sent again by a later sweep: the row stays queued.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.explanations.sweep import reap_expired_explanations, stale_queued_explanations
from persistence.jobs.leases import reap_expired_leases, stale_queued_jobs
from persistence.models import Explanation, Job
from persistence.objects import ObjectStore
from persistence.resend_schedule import touch_queued_since
from persistence.states import JobState
from persistence.wakeups import send_after_commit
from worker.explain.cleanup import discard_attempt_maps
from worker.training.cleanup import remove_ended_jobs_checkpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSweep:
    """What sweeping jobs needs: their rows, their queue, the store their checkpoints are in."""

    sessions: sessionmaker[Session]
    enqueue: Callable[[uuid.UUID], None]  # sends a training message
    store: ObjectStore
    requeue_stale_after: timedelta
    resend_since: datetime | None = None  # the broker lost messages: queued rows since then go again


def sweep_jobs(target: JobSweep, now: datetime) -> list[uuid.UUID]:
    """Returns the jobs sent again (after the transaction committed)."""
    with transaction(target.sessions) as session:
        reaped = reap_expired_leases(session, now)
        stale = stale_queued_jobs(session, now, target.requeue_stale_after)
        if target.resend_since is not None:
            stale += touch_queued_since(session, Job, JobState.QUEUED, target.resend_since, now)
    if reaped.failed:
        log.warning("jobs failed with worker_lost: %s", ", ".join(map(str, reaped.failed)))
    to_send = list(dict.fromkeys(reaped.requeued + stale))
    sent = [job for job in to_send if send_after_commit(partial(target.enqueue, job), f"job {job}")]
    remove_ended_jobs_checkpoints(target.sessions, target.store)
    return sent


@dataclass(frozen=True)
class ExplanationSweep:
    """What sweeping explanations needs: their rows, their queue, their shards' store, the limits."""

    sessions: sessionmaker[Session]
    enqueue: Callable[[uuid.UUID], None]  # sends an explain message
    store: ObjectStore
    requeue_stale_after: timedelta
    max_attempts: int
    resend_since: datetime | None = None  # as JobSweep's


def sweep_explanations(target: ExplanationSweep, now: datetime) -> list[uuid.UUID]:
    """Returns the explanations sent again; the reaped attempts' shards are removed afterwards."""
    with transaction(target.sessions) as session:
        reaped = reap_expired_explanations(session, now, target.max_attempts)
        stale = stale_queued_explanations(session, now, target.requeue_stale_after)
        if target.resend_since is not None:
            stale += touch_queued_since(session, Explanation, JobState.QUEUED, target.resend_since, now)
    if reaped.failed:
        failed = ", ".join(str(lost.row_id) for lost in reaped.failed)
        log.warning("explanations failed with worker_lost: %s", failed)
    requeued = [lost.row_id for lost in reaped.requeued]
    to_send = list(dict.fromkeys(requeued + stale))
    sent = [
        explanation_id
        for explanation_id in to_send
        if send_after_commit(partial(target.enqueue, explanation_id), f"explanation {explanation_id}")
    ]
    # After sending: a slow store never delays a retry.
    for lost in reaped.every():
        discard_attempt_maps(target.store, lost.tenant_id, lost.row_id, lost.attempt)
    return sent
