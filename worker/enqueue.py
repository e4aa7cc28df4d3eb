"""Celery's wake-up messages for jobs and explanations (handed to the API by ``api.main``; used by the
reaper and the tasks). A broker refusal is raised as ``BrokerUnavailableError``, which
``persistence.wakeups.send_after_commit`` logs and lets the sweep make good.

An explain message names a row and, when it is a model's wake-up (``worker.explain.wake_gate``), the
model: its worker then claims the model's queued rows even if the named one has ended."""

from __future__ import annotations

import uuid
from typing import Protocol

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from persistence.wakeups import BrokerUnavailableError, Enqueue, WakeExplanation
from persistence.webhooks.wakeup import WakeWebhooks
from worker.celery_app import (
    EXPLAIN_QUEUE,
    EXPLAIN_TASK,
    MAINTENANCE_QUEUE,
    TRAIN_QUEUE,
    TRAIN_TASK,
    WEBHOOK_TASK,
)
from worker.explain.wake_gate import WakeGate, open_wake_gate


def _send(app: Celery, task: str, queue: str, args: list[str], delay_s: float) -> None:
    try:
        app.send_task(task, args=args, queue=queue, countdown=delay_s or None)
    except KombuOperationalError as exc:  # the broker is unreachable or dropped the connection
        raise BrokerUnavailableError(f"the broker did not take {task} {args}") from exc


def _enqueuer(app: Celery, task: str, queue: str) -> Enqueue:
    def enqueue(item_id: uuid.UUID, delay_s: float = 0.0) -> None:
        _send(app, task, queue, [str(item_id)], delay_s)

    return enqueue


def training_enqueuer(app: Celery) -> Enqueue:
    return _enqueuer(app, TRAIN_TASK, TRAIN_QUEUE)


class ExplainEnqueue(Protocol):
    """Sends one explain message for the row, naming its model when it is the model's wake-up."""

    def __call__(
        self, explanation_id: uuid.UUID, /, delay_s: float = 0.0, model_id: uuid.UUID | None = None
    ) -> None: ...


def explanation_enqueuer(app: Celery) -> ExplainEnqueue:
    def enqueue(explanation_id: uuid.UUID, delay_s: float = 0.0, model_id: uuid.UUID | None = None) -> None:
        args = [str(explanation_id)] + ([] if model_id is None else [str(model_id)])
        _send(app, EXPLAIN_TASK, EXPLAIN_QUEUE, args, delay_s)

    return enqueue


def explanation_waker(enqueue: ExplainEnqueue, gate: WakeGate | None) -> WakeExplanation:
    """Wakes a worker for a newly queued explanation: through the gate, one message per burst of
    the model's requests; without one (a broker other than Redis), one message per row."""

    def wake(explanation_id: uuid.UUID, model_id: uuid.UUID) -> None:
        if gate is None:
            enqueue(explanation_id)
        elif gate.arm(model_id):
            try:
                enqueue(explanation_id, model_id=model_id)
            except BrokerUnavailableError:
                gate.disarm(model_id)  # else later requests would wait for a message that never left
                raise

    return wake


def gated_explanation_waker(app: Celery) -> WakeExplanation:
    """The API's wake-ups: through a gate in the broker's Redis (when the broker is Redis)."""
    return explanation_waker(explanation_enqueuer(app), open_wake_gate(app.conf.broker_url))


def webhook_enqueuer(app: Celery) -> WakeWebhooks:
    """Wakes the webhook sender (no argument: it sends whatever is due), after ``delay_s``."""

    def wake(delay_s: float = 0.0) -> None:
        _send(app, WEBHOOK_TASK, MAINTENANCE_QUEUE, [], delay_s)

    return wake
