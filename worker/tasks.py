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
from persistence.objects import ObjectStore, open_object_store
from persistence.settings import get_settings
from worker.celery_app import EXPLAIN_QUEUE, EXPLAIN_TASK, REAP_TASK, TRAIN_TASK, make_celery
from worker.enqueue import training_enqueuer
from worker.explain_cache import ExplainerCache, load_explainer
from worker.explain_runner import ExplainContext, ExplainOutcome, run_explanation
from worker.reaper import sweep
from worker.supervisor import SupervisorContext, run_training_job, utcnow

app = make_celery(get_settings())  # the Celery CLI needs a module-level application
EXPLAIN_RETRY_DELAY_SECONDS = 5.0


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    """One engine (connection pool) per worker process, made on first use, never at import."""
    return make_session_factory(make_engine(get_settings().resolved_database_url()))


@lru_cache(maxsize=1)
def _object_store() -> ObjectStore:
    return open_object_store(get_settings())


@lru_cache(maxsize=1)
def _explainers() -> ExplainerCache:
    """This process's warm models: the one cache an explain worker keeps (made on first use)."""
    store = _object_store()
    return ExplainerCache(lambda stored: load_explainer(store, stored))


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


@app.task(name=EXPLAIN_TASK)
def explain(explanation_id: str) -> str:
    context = ExplainContext(
        sessions=_sessions(),
        store=_object_store(),
        explainers=_explainers(),
        max_attempts=get_settings().max_attempts,
    )
    outcome = run_explanation(uuid.UUID(explanation_id), context)
    if outcome is ExplainOutcome.RETRY:  # the row is queued again; wake a worker for it a bit later
        app.send_task(
            EXPLAIN_TASK, args=[explanation_id], queue=EXPLAIN_QUEUE, countdown=EXPLAIN_RETRY_DELAY_SECONDS
        )
    return str(outcome)
