"""Celery's wake-up messages for jobs and explanations (handed to the API by ``api.main``; used by the
reaper and the tasks). A broker refusal is raised as ``BrokerUnavailableError``, which
``persistence.wakeups.send_after_commit`` logs and lets the sweep make good."""

from __future__ import annotations

import uuid

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from persistence.wakeups import BrokerUnavailableError, Enqueue
from persistence.webhooks.wakeup import WakeWebhooks
from worker.celery_app import (
    EXPLAIN_QUEUE,
    EXPLAIN_TASK,
    MAINTENANCE_QUEUE,
    TRAIN_QUEUE,
    TRAIN_TASK,
    WEBHOOK_TASK,
)


def _enqueuer(app: Celery, task: str, queue: str) -> Enqueue:
    def enqueue(item_id: uuid.UUID, delay_s: float = 0.0) -> None:
        try:
            app.send_task(task, args=[str(item_id)], queue=queue, countdown=delay_s or None)
        except KombuOperationalError as exc:  # the broker is unreachable or dropped the connection
            raise BrokerUnavailableError(f"the broker did not take {task} for {item_id}") from exc

    return enqueue


def training_enqueuer(app: Celery) -> Enqueue:
    return _enqueuer(app, TRAIN_TASK, TRAIN_QUEUE)


def explanation_enqueuer(app: Celery) -> Enqueue:
    return _enqueuer(app, EXPLAIN_TASK, EXPLAIN_QUEUE)


def webhook_enqueuer(app: Celery) -> WakeWebhooks:
    """Wakes the webhook sender (no argument: it sends whatever is due), after ``delay_s``."""

    def wake(delay_s: float = 0.0) -> None:
        try:
            app.send_task(WEBHOOK_TASK, queue=MAINTENANCE_QUEUE, countdown=delay_s or None)
        except KombuOperationalError as exc:
            raise BrokerUnavailableError(f"the broker did not take {WEBHOOK_TASK}") from exc

    return wake
