"""The API process's composition root: ``uvicorn api.main:app``.

The only place where the HTTP layer meets the queue: it hands ``create_app`` a function that sends
the Celery wake-up message and one that checks the broker, so ``api/`` itself never imports Celery.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from api.app import create_app
from persistence.settings import get_settings
from worker.broker_health import broker_check
from worker.celery_app import make_celery
from worker.enqueue import gated_explanation_waker, training_enqueuer, webhook_enqueuer


def build() -> FastAPI:
    settings = get_settings()
    celery = make_celery(settings)
    return create_app(
        settings,
        enqueue_training=training_enqueuer(celery),
        enqueue_explanation=gated_explanation_waker(celery),
        check_broker=broker_check(celery),
        enqueue_webhooks=webhook_enqueuer(celery),
    )


app = build()
# Everything built at start-up lives as long as the process: frozen, it is left out of every
# collection (when the API still imported torch, that was ~600K objects and ~350 ms pauses).
gc.freeze()
