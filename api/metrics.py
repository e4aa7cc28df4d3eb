"""Prometheus metrics on a per-app registry: request latency by route template, jobs by state.

Jobs by state are counted at scrape time (one GROUP BY), so the gauge is never stale and no
process has to keep it up to date.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from persistence.job_states import JobState
from persistence.models import Job

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "<unmatched>"  # unknown paths share one label: no cardinality explosion


class JobsByStateCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # What registration inspects: describing without collecting keeps the database out of app start.
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        try:
            with self.sessions() as session:
                counts = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        except SQLAlchemyError as error:
            logger.warning("jobs-by-state metric skipped: database error %s", type(error).__name__)
            return []
        family = self._family()
        for state in JobState:
            family.add_metric([state.value], float(counts.get(state.value, 0)))
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("batchcam_jobs", "Training jobs by state.", labels=["state"])


@dataclass(frozen=True)
class ApiMetrics:
    registry: CollectorRegistry
    request_seconds: Histogram


def create_metrics(sessions: sessionmaker[Session]) -> ApiMetrics:
    registry = CollectorRegistry()
    request_seconds = Histogram(
        "batchcam_http_request_duration_seconds",
        "HTTP request latency, by method, route template and status (streams: until they end).",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    registry.register(JobsByStateCollector(sessions))
    return ApiMetrics(registry=registry, request_seconds=request_seconds)


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
