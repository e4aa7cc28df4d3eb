"""Sending wake-up messages for jobs and explanations (used by the API after commit, and by the reaper)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from worker.celery_app import EXPLAIN_QUEUE, EXPLAIN_TASK, TRAIN_QUEUE, TRAIN_TASK

log = logging.getLogger(__name__)


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


def send_after_commit(send: Callable[[], None], what: str) -> bool:
    """Send the wake-up of a row already committed as queued; False when the broker failed.

    The failure is logged, not raised: the row is the truth, and the sweep sends a queued row's
    message again once it is due (``persistence.resend_schedule``), so a lost message only delays
    the work. Raising would instead abort what follows the send (clean-up, the rest of a sweep).
    """
    try:
        send()
    except (KombuOperationalError, OSError):  # the broker is unreachable or dropped the connection
        log.warning("sending %s failed; it stays queued and the sweep sends it again", what, exc_info=True)
        return False
    except Exception:  # anything else is a bug of ours: loud, but the row still gets its resend
        log.exception("sending %s failed unexpectedly; it stays queued and the sweep sends it again", what)
        return False
    return True
