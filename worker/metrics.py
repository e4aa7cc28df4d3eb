"""A worker's Prometheus metrics: explain latency, observed where an explanation ends.

They live on the default registry and are served over HTTP by the worker process itself when
``BATCHCAM_WORKER_METRICS_PORT`` is set (``serve_metrics``, called at worker start). Tasks run in
a thread of the process that serves the registry (one task at a time).

Two histograms, by the state the explanation ended in:

- ``batchcam_explain_duration_seconds``: end to end, the row's ``created_at`` to its end
  (queue wait, earlier attempts and the run). The API writes the first and a worker the second, so
  clock skew between hosts shows up here; negative values count as 0.
- ``batchcam_explain_run_seconds``: the ending attempt's wall time in this worker, claim to end (for
  requests explained together, the batch's).
"""

from __future__ import annotations

import logging
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import Histogram, start_http_server

from persistence.settings import Settings
from persistence.states import JobState

log = logging.getLogger(__name__)

OBSERVED_ENDS = frozenset({JobState.SUCCEEDED, JobState.FAILED})

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


def observe_explain_end(state: str, created_at: datetime | None, run_seconds: float, now: datetime) -> None:
    """Observe an explanation this worker ended (``state`` succeeded or failed; other outcomes, a
    retry or a duplicate delivery, observe nothing, so each explanation is counted once)."""
    if state not in OBSERVED_ENDS:
        return
    EXPLAIN_RUN.labels(state).observe(run_seconds)
    if created_at is not None:
        EXPLAIN_DURATION.labels(state).observe(max((now - created_at).total_seconds(), 0.0))


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
