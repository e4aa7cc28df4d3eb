"""Sending wake-up messages for jobs and explanations (used by the API after commit, and by the reaper)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from celery import Celery

from worker.celery_app import EXPLAIN_QUEUE, EXPLAIN_TASK, TRAIN_QUEUE, TRAIN_TASK


def training_enqueuer(app: Celery) -> Callable[[uuid.UUID], None]:
    def enqueue(job_id: uuid.UUID) -> None:
        app.send_task(TRAIN_TASK, args=[str(job_id)], queue=TRAIN_QUEUE)

    return enqueue


def explanation_enqueuer(app: Celery) -> Callable[[uuid.UUID], None]:
    def enqueue(explanation_id: uuid.UUID) -> None:
        app.send_task(EXPLAIN_TASK, args=[str(explanation_id)], queue=EXPLAIN_QUEUE)

    return enqueue
