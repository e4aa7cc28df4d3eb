"""A worker's Prometheus metrics: explain latency, observed where an explanation ends.

They live on the default registry and are served over HTTP by the worker process itself when
``BATCHCAM_WORKER_METRICS_PORT`` is set (``serve_metrics``, called at worker start). Workers run
Celery's solo pool, so tasks run in the process that serves the registry.

Two histograms, by the state the explanation ended in:

- ``batchcam_explain_duration_seconds``: end to end, the row's ``created_at`` to ``finished_at``
  (queue wait, earlier attempts and the run). The API writes the first and a worker the second, so
  clock skew between hosts shows up here; negative values count as 0.
- ``batchcam_explain_run_seconds``: the ending attempt's wall time in this worker, claim to end
  (the rows keep no start time, so only the worker can measure it).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Collection
from typing import Protocol, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import Histogram, start_http_server
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from persistence.models import Explanation
from persistence.settings import Settings
from persistence.states import TERMINAL_STATES

log = logging.getLogger(__name__)

# From one cached image (tens of ms) to a full request behind a long queue (minutes).
EXPLAIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

EXPLAIN_DURATION = Histogram(
    "batchcam_explain_duration_seconds",
    "Explanations from creation to their end (queue wait and retries included), by end state.",
    ["state"],
    buckets=EXPLAIN_BUCKETS,
)
EXPLAIN_RUN = Histogram(
    "batchcam_explain_run_seconds",
    "The attempt that ended an explanation, claim to end, in the worker, by end state.",
    ["state"],
    buckets=EXPLAIN_BUCKETS,
)


class HasSessions(Protocol):
    @property
    def sessions(self) -> sessionmaker[Session]: ...


Context = TypeVar("Context", bound=HasSessions)
Outcome = TypeVar("Outcome")


def observe_explain_latency(
    ending: Collection[Outcome],
) -> Callable[[Callable[[uuid.UUID, Context], Outcome]], Callable[[uuid.UUID, Context], Outcome]]:
    """Wrap ``run_explanation``: when its outcome is one of ``ending`` (this call ended the row),
    observe both histograms. Other outcomes (a retry, a duplicate delivery) observe nothing, so each
    explanation is counted once, by the worker that ended it."""

    def decorate(run: Callable[[uuid.UUID, Context], Outcome]) -> Callable[[uuid.UUID, Context], Outcome]:
        @functools.wraps(run)
        def timed(explanation_id: uuid.UUID, context: Context) -> Outcome:
            started = time.monotonic()
            outcome = run(explanation_id, context)
            if outcome in ending:
                record_end(context.sessions, explanation_id, time.monotonic() - started)
            return outcome

        return timed

    return decorate


def record_end(sessions: sessionmaker[Session], explanation_id: uuid.UUID, run_seconds: float) -> None:
    """Observe an ended explanation. A metric is never worth failing the work: errors only warn."""
    try:
        with sessions() as session:
            row = session.execute(
                select(Explanation.state, Explanation.created_at, Explanation.finished_at).where(
                    Explanation.id == explanation_id
                )
            ).one_or_none()
    except SQLAlchemyError as error:
        reason = type(error).__name__
        log.warning("explain latency of %s not observed: database error %s", explanation_id, reason)
        return
    if row is None or row.state not in TERMINAL_STATES or row.finished_at is None:
        return
    EXPLAIN_RUN.labels(row.state).observe(run_seconds)
    EXPLAIN_DURATION.labels(row.state).observe(max((row.finished_at - row.created_at).total_seconds(), 0.0))


def serve_metrics(settings: Settings) -> WSGIServer | None:
    """Serve the default registry on ``BATCHCAM_WORKER_METRICS_PORT`` (a daemon thread); the server,
    or None when no port is set or it could not be bound.

    A port that cannot be bound is logged, not raised: a worker without metrics still does its work.
    """
    port = settings.worker_metrics_port
    if port is None:
        return None
    address = settings.worker_metrics_address
    try:
        server, _ = start_http_server(port, addr=address)
    except OSError as error:
        log.error("worker metrics not served on %s:%d: %s", address, port, error)
        return None
    log.info("worker metrics served on http://%s:%d/metrics", address, port)
    return server
