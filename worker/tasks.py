"""Celery tasks (thin: claim-and-supervise lives in ``training.supervisor``, the sweep in ``reaper``).

Run a training worker with ``celery -A worker.tasks worker -Q train`` (one per GPU; one task at a time)
and the reaper with ``celery -A worker.tasks beat``.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from functools import lru_cache, partial

import httpx
from celery.signals import worker_init
from celery.worker import WorkController
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import make_engine, make_session_factory
from persistence.explanations.batching import BatchLimits
from persistence.models import utcnow
from persistence.objects import ObjectStore, open_object_store
from persistence.settings import get_settings
from persistence.wakeups import send_after_commit
from persistence.webhooks.destinations import DestinationPolicy
from persistence.webhooks.wakeup import wake_sender_after_commit
from worker.broker_restart import resend_queued_since
from worker.celery_app import (
    EXPLAIN_TASK,
    REAP_TASK,
    TRAIN_QUEUE,
    TRAIN_TASK,
    WEBHOOK_TASK,
    fetch_only_with_a_free_slot,
    make_celery,
)
from worker.enqueue import explanation_enqueuer, explanation_waker, training_enqueuer, webhook_enqueuer
from worker.explain.cache import ExplainerCache, load_explainer
from worker.explain.ended_here import EndedHere
from worker.explain.inputs import SplitCache, new_split_cache
from worker.explain.runner import ExplainContext, ExplainOutcome, run_explanation
from worker.explain.threads import TorchThreads
from worker.explain.wake_gate import WakeGate, open_wake_gate
from worker.metrics import serve_metrics
from worker.reaper import ExplanationSweep, JobSweep, sweep_explanations, sweep_jobs
from worker.training.child_start import warm_up
from worker.training.supervisor import SupervisorContext, run_training_job
from worker.training.work_dirs import remove_abandoned_work_dirs
from worker.webhooks.sender import SenderContext, deliver_due, lease_for, new_client

app = make_celery(get_settings())  # the Celery CLI needs a module-level application
EXPLAIN_RETRY_DELAY_SECONDS = 5.0


@worker_init.connect
def _serve_worker_metrics(**_: object) -> None:
    """Worker start (not beat, not the API): serve this process's metrics if a port is set."""
    serve_metrics(get_settings())


@worker_init.connect
def _prepare_training(sender: WorkController, **_: object) -> None:
    """A worker that serves the train queue removes what killed workers left on this host, starts
    the forkserver its jobs' children fork from, and fetches a message only when it is free (``-Q``
    is applied before this signal: ``consume_from`` holds the queues it serves)."""
    if TRAIN_QUEUE in sender.app.amqp.queues.consume_from:
        remove_abandoned_work_dirs()
        warm_up(get_settings().train_child_start)
        fetch_only_with_a_free_slot(sender.app)


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    """One engine (connection pool) per worker process, made on first use, never at import."""
    sessions = make_session_factory(make_engine(get_settings().resolved_database_url()))
    wake_sender_after_commit(sessions, webhook_enqueuer(app))  # deliveries this process writes go out
    return sessions


@lru_cache(maxsize=1)
def _object_store() -> ObjectStore:
    return open_object_store(get_settings())


@lru_cache(maxsize=1)
def _explainers() -> ExplainerCache:
    """This process's warm models: the one cache an explain worker keeps (made on first use)."""
    store = _object_store()
    return ExplainerCache(lambda stored: load_explainer(store, stored))


@lru_cache(maxsize=1)
def _torch_threads() -> TorchThreads:
    """Small batches with the settings' threads, large ones with torch's choice."""
    return TorchThreads(small_batch=get_settings().explain_torch_threads)


@lru_cache(maxsize=1)
def _ended_here() -> EndedHere:
    """The explanations this process ended lately (their duplicate messages skip the claim)."""
    return EndedHere()


@lru_cache(maxsize=1)
def _dataset_splits() -> SplitCache:
    """This process's recently explained dataset splits (regenerating one costs ~0.3–0.5 s)."""
    return new_split_cache()


def _context() -> SupervisorContext:
    return SupervisorContext(
        sessions=_sessions(),
        settings=get_settings(),
        owner=f"{socket.gethostname()}:{os.getpid()}",
        enqueue=training_enqueuer(app),
        store=_object_store(),
    )


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> str | None:
    state = run_training_job(uuid.UUID(job_id), _context())
    return None if state is None else str(state)


@app.task(name=REAP_TASK)
def reap() -> dict[str, list[str]]:
    """Sweep jobs, then explanations; returns what was sent again, by kind."""
    settings = get_settings()
    stale_after = timedelta(seconds=settings.requeue_stale_after_seconds)
    interval = timedelta(seconds=settings.reaper_interval_seconds)
    resend_since = resend_queued_since(settings.resolved_broker_url(), utcnow(), interval)
    jobs = sweep_jobs(
        JobSweep(
            sessions=_sessions(),
            enqueue=training_enqueuer(app),
            store=_object_store(),
            requeue_stale_after=stale_after,
            resend_since=resend_since,
        ),
        utcnow(),
    )
    explanations = sweep_explanations(
        ExplanationSweep(
            sessions=_sessions(),
            enqueue=explanation_enqueuer(app),
            store=_object_store(),
            requeue_stale_after=stale_after,
            max_attempts=settings.max_attempts,
            resend_since=resend_since,
        ),
        utcnow(),
    )
    return {"jobs": [str(job) for job in jobs], "explanations": [str(e) for e in explanations]}


@lru_cache(maxsize=1)
def _webhook_client() -> httpx.Client:
    """One connection pool per worker process for the webhook receivers."""
    settings = get_settings()
    return new_client(settings.webhook_connect_timeout_seconds, settings.webhook_read_timeout_seconds)


@app.task(name=WEBHOOK_TASK)
def deliver_webhooks() -> int:
    """Send the due webhook deliveries (woken after a commit that wrote some, and by beat)."""
    settings = get_settings()
    timeouts = (settings.webhook_connect_timeout_seconds, settings.webhook_read_timeout_seconds)
    context = SenderContext(
        sessions=_sessions(),
        client=_webhook_client(),
        policy=DestinationPolicy.from_settings(settings),
        schedule=settings.webhook_retry_schedule_seconds,
        lease_for=lease_for(*timeouts),
        max_response_bytes=settings.webhook_max_response_bytes,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        wake=webhook_enqueuer(app),
        sweep_interval_s=settings.webhook_sweep_interval_seconds,
    )
    return deliver_due(context)


@lru_cache(maxsize=1)
def _wake_gate() -> WakeGate | None:
    """The per-model wake-up keys (Redis brokers only), one client per process."""
    return open_wake_gate(get_settings().resolved_broker_url())


@app.task(name=EXPLAIN_TASK)
def explain(explanation_id: str, model_id: str | None = None) -> str:
    """``model_id``: this message is the model's wake-up (``worker.explain.wake_gate``)."""
    settings = get_settings()
    gate = _wake_gate()
    woken_model = uuid.UUID(model_id) if model_id is not None else None
    if woken_model is not None and gate is not None:
        gate.disarm(woken_model)  # before the claim: rows queued from now on get a wake-up of their own
    context = ExplainContext(
        sessions=_sessions(),
        store=_object_store(),
        explainers=_explainers(),
        splits=_dataset_splits(),
        upload_limits=settings.upload_limits(),
        max_attempts=settings.max_attempts,
        lease_for=timedelta(seconds=settings.explain_lease_seconds),
        batching=BatchLimits(settings.explain_batch_max_images, settings.explain_batch_max_requests),
        ended_here=_ended_here(),
        threads=_torch_threads(),
        wake_model=explanation_waker(explanation_enqueuer(app), gate),
    )
    outcome = run_explanation(uuid.UUID(explanation_id), context, woken_model)
    if outcome is ExplainOutcome.RETRY:  # the row is queued again; wake a worker for it a bit later
        wake_up = partial(
            explanation_enqueuer(app),
            uuid.UUID(explanation_id),
            delay_s=EXPLAIN_RETRY_DELAY_SECONDS,
            model_id=woken_model,  # still the model's wake-up: it was disarmed above
        )
        send_after_commit(wake_up, f"explanation {explanation_id}")
    return str(outcome)
