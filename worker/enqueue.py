"""Sending wake-up messages for jobs and explanations (used by the API after commit, and by the reaper)."""

from __future__ import annotations

import uuid
from typing import Protocol

from celery import Celery

from worker.celery_app import EXPLAIN_QUEUE, EXPLAIN_TASK, TRAIN_QUEUE, TRAIN_TASK


class Enqueue(Protocol):
    """Sends one wake-up message; ``delay_s`` holds it back (a retry's backoff)."""

    def __call__(self, item_id: uuid.UUID, /, delay_s: float = 0.0) -> None: ...


def training_enqueuer(app: Celery) -> Enqueue:
    def enqueue(job_id: uuid.UUID, delay_s: float = 0.0) -> None:
        app.send_task(TRAIN_TASK, args=[str(job_id)], queue=TRAIN_QUEUE, countdown=delay_s or None)

    return enqueue


def explanation_enqueuer(app: Celery) -> Enqueue:
    def enqueue(explanation_id: uuid.UUID, delay_s: float = 0.0) -> None:
        app.send_task(
            EXPLAIN_TASK, args=[str(explanation_id)], queue=EXPLAIN_QUEUE, countdown=delay_s or None
        )

    return enqueue
