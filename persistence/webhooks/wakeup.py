"""Waking the sender once deliveries have committed (docs/ARCHITECTURE.md §6.7, §7.5).

The outbox marks the session; a listener on the process's session factory sends one wake-up after
that session commits (nothing on a rollback). Persistence knows no broker: the composition roots hand
in the sender (``worker.enqueue.webhook_enqueuer``). A lost wake-up only delays a delivery: the
periodic sweep sends what is due.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from persistence.wakeups import send_after_commit

WakeWebhooks = Callable[[float], None]  # delay in seconds (0: now)
_PENDING = "batchcam.webhook_deliveries_added"


def mark_for_wake_up(session: Session) -> None:
    session.info[_PENDING] = True


def wake_sender_after_commit(sessions: sessionmaker[Session], wake: WakeWebhooks) -> None:
    """Every session of ``sessions`` that added deliveries sends ``wake(0)`` after its commit."""

    def after_commit(session: Session) -> None:
        if session.info.pop(_PENDING, False):
            send_after_commit(partial(wake, 0.0), "the webhook sender's wake-up")

    def after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_soft_rollback", lambda session, _previous: after_rollback(session))
