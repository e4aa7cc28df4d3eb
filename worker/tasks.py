"""Celery tasks (thin: claim-and-supervise lives in ``supervisor``, the sweep in ``reaper``).

Run a training worker with ``celery -A worker.tasks worker -Q train`` (one per GPU; solo pool)
and the reaper with ``celery -A worker.tasks beat``.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import make_engine, make_session_factory
from persistence.settings import get_settings
from worker.celery_app import REAP_TASK, TRAIN_TASK, make_celery
from worker.enqueue import training_enqueuer
from worker.reaper import sweep
from worker.supervisor import SupervisorContext, run_training_job, utcnow

app = make_celery(get_settings())  # the Celery CLI needs a module-level application


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    """One engine (connection pool) per worker process, made on first use, never at import."""
    return make_session_factory(make_engine(get_settings().resolved_database_url()))


def _context() -> SupervisorContext:
    return SupervisorContext(
        sessions=_sessions(),
        settings=get_settings(),
        owner=f"{socket.gethostname()}:{os.getpid()}",
        enqueue=training_enqueuer(app),
    )


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> str | None:
    state = run_training_job(uuid.UUID(job_id), _context())
    return None if state is None else str(state)


@app.task(name=REAP_TASK)
def reap() -> list[str]:
    settings = get_settings()
    sent = sweep(
        _sessions(), training_enqueuer(app), utcnow(), timedelta(seconds=settings.requeue_stale_after_seconds)
    )
    return [str(job_id) for job_id in sent]
