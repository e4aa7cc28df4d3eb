"""Checkpoints of ended jobs: which jobs still name one, and forgetting it once its files are gone.

A checkpoint only lets a later attempt of the same job resume, so once the job has ended nothing can
use it (for ConvNeXt-V2-Tiny about 340 MB each). The supervisor deletes its job's checkpoints when
it writes the end, but it leaves ``checkpoint_key`` as it is; the sweep is what guarantees removal:
every ended job that still names a checkpoint has its checkpoint folder removed (empty already for
most), then its key cleared. That covers jobs that ended without a supervisor (the sweep reaped a
lost worker's last attempt or a cancel whose worker vanished; the API cancelled a queued job
between attempts) and deletions that failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from persistence.models import Job
from persistence.states import TERMINAL_STATES


@dataclass(frozen=True)
class LeftCheckpoint:
    """An ended job whose checkpoints may still be stored."""

    tenant_id: uuid.UUID
    job_id: uuid.UUID
    key: str  # the last one recorded; the files to remove are all under its job's prefix


def ended_jobs_with_checkpoints(session: Session, limit: int) -> list[LeftCheckpoint]:
    """Up to ``limit`` ended jobs that still name a checkpoint (a partial index keeps this cheap), in
    random order: jobs whose removal keeps failing cannot hold back the others."""
    rows = session.execute(
        select(Job.tenant_id, Job.id, Job.checkpoint_key)
        .where(Job.checkpoint_key.is_not(None), Job.state.in_(TERMINAL_STATES))
        .order_by(func.random())
        .limit(limit)
    ).all()
    return [LeftCheckpoint(tenant_id, job_id, key) for tenant_id, job_id, key in rows if key is not None]


def forget_checkpoints(session: Session, removed: list[LeftCheckpoint]) -> None:
    """Clear ``checkpoint_key`` of jobs whose checkpoint files are gone (still ended, same key)."""
    for left in removed:
        session.execute(
            update(Job)
            .where(Job.id == left.job_id, Job.checkpoint_key == left.key, Job.state.in_(TERMINAL_STATES))
            .values(checkpoint_key=None, updated_at=Job.updated_at)  # housekeeping: not a change users see
        )
