"""The app factory. Everything an app instance needs is built here and lives on ``app.state``.

Enqueueing is injected (``enqueue_training(job_id)`` and ``enqueue_explanation(explanation_id)`` are
called after the row has committed) by the composition root, ``api.main``, so no other module of this
package imports Celery, kombu or the worker code (``tests/service/test_api_imports.py`` checks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.context import ApiContext, BrokerCheck, EnqueueTraining, StreamTimings
from api.dashboard.install import install_dashboard
from api.datasets.routes import router as datasets_router
from api.explanations.limits import ExplanationLimits
from api.explanations.routes import router as explanations_router
from api.http.api_docs import install_api_docs
from api.http.errors import install_error_handlers
from api.http.header_limits import HeaderLimitMiddleware, HeaderLimits
from api.http.openapi import install_openapi
from api.http.openapi_clients import operation_id
from api.http.request_context import RequestContextMiddleware
from api.jobs.events import router as job_events_router
from api.jobs.routes import router as jobs_router
from api.models.routes import router as models_router
from api.ops.health import router as health_router
from api.ops.metrics import RequestMetricsMiddleware, create_metrics
from api.ops.metrics import router as metrics_router
from api.webhooks.routes import router as webhooks_router
from batchcam.spec.limits import UploadLimits
from persistence.db import make_engine, make_session_factory
from persistence.notifications import ChangeListener, libpq_url
from persistence.objects import ObjectStore, open_object_store
from persistence.settings import Settings
from persistence.wakeups import WakeExplanation
from persistence.webhooks.wakeup import WakeWebhooks, wake_sender_after_commit

API_DESCRIPTION = """\
Train image classifiers that are right for the right reasons (Batch-CAM).

Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 `application/problem+json`
with a stable `type` per kind of error. Submitting work answers `202 Accepted` with `Location` and
`Retry-After`; POSTs honour `Idempotency-Key`. Lists are cursor-paginated (follow `links.next`).
"""

OPENAPI_TAGS = [
    {"name": "jobs", "description": "Training jobs: submit, follow, cancel."},
    {"name": "datasets", "description": "Built-in datasets and your uploads."},
    {"name": "models", "description": "What succeeded jobs produced: prototypes, reports, weights."},
    {"name": "explanations", "description": "Heatmaps and predictions for new images, on demand."},
    {"name": "webhooks", "description": "Signed events (Standard Webhooks) pushed to your endpoints."},
    {"name": "operations", "description": "Health, readiness and metrics (no API key needed)."},
]


def create_app(
    settings: Settings,
    *,
    enqueue_training: EnqueueTraining,
    object_store: ObjectStore | None = None,
    check_broker: BrokerCheck | None = None,
    upload_limits: UploadLimits | None = None,
    stream_timings: StreamTimings | None = None,
    enqueue_explanation: WakeExplanation | None = None,
    explanation_limits: ExplanationLimits | None = None,
    enqueue_webhooks: WakeWebhooks | None = None,
) -> FastAPI:
    """``upload_limits`` default to the settings'; ``explanation_limits`` to the library's caps and the
    settings' waiting limit. ``enqueue_webhooks`` wakes the webhook sender after a commit that wrote
    deliveries (a cancel, a redelivery); without it the sender's periodic sweep finds them."""
    engine = make_engine(settings.resolved_database_url())
    context = ApiContext(
        changes=ChangeListener(libpq_url(settings.resolved_database_url())),
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        object_store=object_store if object_store is not None else open_object_store(settings),
        enqueue_training=enqueue_training,
        check_broker=check_broker,
        upload_limits=upload_limits or settings.upload_limits(),
        stream_timings=stream_timings
        or StreamTimings(key_recheck_seconds=settings.stream_key_recheck_seconds),
        enqueue_explanation=enqueue_explanation,
        explanation_limits=explanation_limits
        or ExplanationLimits(max_waiting_requests=settings.max_waiting_requests),
    )
    if enqueue_webhooks is not None:
        wake_sender_after_commit(context.sessions, enqueue_webhooks)
    metrics = create_metrics(context.sessions)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        listening = asyncio.create_task(context.changes.listen(), name="change-notifications")
        yield
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        engine.dispose()

    app = FastAPI(
        title="Batch-CAM",
        version="1.0",
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,  # /docs is served from local files, not a CDN (install_api_docs)
        redoc_url=None,  # ReDoc loads a logo from its CDN even from a local copy (api/http/api_docs.py)
    )
    app.state.context = context
    app.state.metrics = metrics
    install_error_handlers(app)
    install_openapi(app)
    install_api_docs(app)
    for router in (
        jobs_router,
        job_events_router,
        datasets_router,
        models_router,
        explanations_router,
        webhooks_router,
        health_router,
        metrics_router,
    ):
        app.include_router(router)
    install_dashboard(app)  # after the API: a request is matched against the routes in order
    # The last one added is outermost: metrics see the 500 that the request context turns bugs into;
    # header caps apply before anything reads the headers, with a request id for their 431.
    header_limits = HeaderLimits(settings.max_request_headers, settings.max_request_header_bytes)
    app.add_middleware(HeaderLimitMiddleware, limits=header_limits)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app
