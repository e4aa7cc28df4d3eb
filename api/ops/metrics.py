"""Prometheus metrics on a per-app registry: request latency by route template, ``?wait`` explain
latency, and jobs and explanations by state with the depth and oldest age of each queue.

The gauges are counted at scrape time (one GROUP BY per table), so they are never stale and no
process has to keep them up to date. The workers serve their own metrics (``worker.metrics``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persistence.models import Explanation, Job, utcnow
from persistence.states import JobState

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "<unmatched>"  # unknown paths share one label: no cardinality explosion
# The Celery queues' names (worker.celery_app), repeated: this package never imports the worker.
TRAIN_QUEUE = "train"
EXPLAIN_QUEUE = "explain"


@dataclass(frozen=True)
class StateSummary:
    """One table's rows by state; how many are queued, and when the oldest of those was created."""

    counts: dict[str, int]
    queued: int
    oldest_queued: datetime | None


def state_summary(session: Session, table: type[Job] | type[Explanation], queued: str) -> StateSummary:
    """One GROUP BY: counts per state and, in the same pass, each state's oldest row."""
    rows = session.execute(
        select(table.state, func.count(), func.min(table.created_at)).group_by(table.state)
    ).all()
    counts = {state: int(count) for state, count, _ in rows}
    oldest = {state: first for state, _, first in rows}.get(queued)
    return StateSummary(counts, counts.get(queued, 0), oldest)


class WorkCollector(Collector):
    """Jobs and explanations by state, and each queue's depth and oldest waiting row.

    Counted at scrape time from the rows (the unit of delivery), so the numbers are never stale and
    agree across API processes; two queries per scrape, one per table.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # What registration inspects: describing without collecting keeps the database out of app start.
        return self._families()

    def collect(self) -> Iterable[Metric]:
        try:
            with self.sessions() as session:
                jobs = state_summary(session, Job, JobState.QUEUED)
                explanations = state_summary(session, Explanation, JobState.QUEUED)
        except SQLAlchemyError as error:
            logger.warning("job and explanation metrics skipped: database error %s", type(error).__name__)
            return []
        now = utcnow()
        jobs_family, explanations_family, depth, oldest_age = families = self._families()
        for state in JobState:
            jobs_family.add_metric([state.value], float(jobs.counts.get(state.value, 0)))
        for kind in JobState:
            explanations_family.add_metric([kind.value], float(explanations.counts.get(kind.value, 0)))
        for queue, summary in ((TRAIN_QUEUE, jobs), (EXPLAIN_QUEUE, explanations)):
            depth.add_metric([queue], float(summary.queued))
            waited = 0.0 if summary.oldest_queued is None else (now - summary.oldest_queued).total_seconds()
            oldest_age.add_metric([queue], max(waited, 0.0))  # API hosts' clocks may disagree a little
        return families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("batchcam_jobs", "Training jobs by state.", labels=["state"]),
            GaugeMetricFamily("batchcam_explanations", "Explanations by state.", labels=["state"]),
            GaugeMetricFamily(
                "batchcam_queue_depth",
                "Rows waiting in state queued: jobs (queue train) or explanations (queue explain).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "batchcam_queue_oldest_age_seconds",
                "Seconds since the oldest queued row was created (0 when none is queued).",
                labels=["queue"],
            ),
        )


@dataclass(frozen=True)
class ApiMetrics:
    registry: CollectorRegistry
    request_seconds: Histogram
    explain_wait_seconds: Histogram
    explain_waits_refused: Counter


def create_metrics(sessions: sessionmaker[Session]) -> ApiMetrics:
    registry = CollectorRegistry()
    request_seconds = Histogram(
        "batchcam_http_request_duration_seconds",
        "HTTP request latency, by method, route template and status (streams: until they end).",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    # Not batchcam_explain_duration_seconds: the workers observe that for every explanation, and a
    # second series of the same name for the waited ones only would double-count in sums.
    explain_wait_seconds = Histogram(
        "batchcam_explain_wait_seconds",
        "Submissions with ?wait answered with the finished result: seconds from the explanation's "
        "creation until this API saw it end, by end state.",
        ["state"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    explain_waits_refused = Counter(
        "batchcam_explain_waits_refused",
        "Submissions with ?wait answered 202 at once because this process already held its maximum "
        "of waiting requests (BATCHCAM_MAX_WAITING_REQUESTS).",
        registry=registry,
    )
    registry.register(WorkCollector(sessions))
    return ApiMetrics(
        registry=registry,
        request_seconds=request_seconds,
        explain_wait_seconds=explain_wait_seconds,
        explain_waits_refused=explain_waits_refused,
    )


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if nothing answers

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self.metrics.request_seconds.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (no API key needed)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics_endpoint(request: Request) -> Response:
    metrics: ApiMetrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
