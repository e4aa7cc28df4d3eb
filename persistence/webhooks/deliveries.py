"""A delivery's life: pending → delivering (a sender's short lease) → succeeded, or pending again
after a backoff, or failed once the schedule is spent (docs/ARCHITECTURE.md §7.5).

As with jobs (§6), every move is a conditional UPDATE on what the writer read, so two senders, a
duplicate wake-up or a sender whose lease ran out can never both record an attempt. Postgres skips
rows another sender has locked (``FOR UPDATE SKIP LOCKED``); the embedded SQLite relies on the
conditions alone. A sender killed mid-send loses nothing: its lease runs out and the delivery is
claimed again, with the same message id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from persistence.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from persistence.webhooks.secrets import signing_secrets
from persistence.webhooks.wakeup import mark_for_wake_up


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ClaimedDelivery:
    """One delivery a sender holds until ``lease_expires_at``: what to send, where, signed by what."""

    id: uuid.UUID
    message_id: str
    payload: dict[str, Any]
    url: str
    secrets: list[str]
    owner: str
    attempt: int  # counting this one, in the current schedule


@dataclass(frozen=True)
class AttemptOutcome:
    """What one try found: a status code (any 2xx succeeds) or an error, and the answer's start."""

    status_code: int | None
    error: str | None
    response: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _due(now: datetime) -> Any:
    pending = (WebhookDelivery.status == DeliveryStatus.PENDING) & (WebhookDelivery.next_attempt_at <= now)
    abandoned = (WebhookDelivery.status == DeliveryStatus.DELIVERING) & (
        WebhookDelivery.lease_expires_at < now
    )
    return or_(pending, abandoned)


def claim_due(
    session: Session,
    owner: str,
    now: datetime,
    lease_for: timedelta,
    limit: int,
    max_attempts: int | None = None,
) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due deliveries (oldest due first) under a lease; the attempt counts now,
    so a delivery whose senders keep dying still reaches the end of its schedule: one abandoned
    after ``max_attempts`` attempts (the schedule's length + 1) is ``failed`` instead."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
        .where(_due(now))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for delivery_id, status, attempts in rows:
        if status == DeliveryStatus.DELIVERING and max_attempts is not None and attempts >= max_attempts:
            _give_up(session, delivery_id, attempts, now)
            continue
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == status,
                WebhookDelivery.attempts == attempts,
                _due(now),
            )
            .values(
                status=DeliveryStatus.DELIVERING,
                attempts=attempts + 1,
                lease_owner=owner,
                lease_expires_at=now + lease_for,
                updated_at=now,
            )
            .returning(WebhookDelivery.message_id, WebhookDelivery.payload, WebhookDelivery.endpoint_id)
        ).one_or_none()
        if taken is None:
            continue
        message_id, payload, endpoint_id = taken
        endpoint = session.execute(
            select(
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookEndpoint.previous_secret,
                WebhookEndpoint.previous_secret_expires_at,
            ).where(WebhookEndpoint.id == endpoint_id)
        ).one()
        keys = signing_secrets(*endpoint[1:], now)
        claimed.append(
            ClaimedDelivery(delivery_id, message_id, payload, endpoint.url, keys, owner, attempts + 1)
        )
    return claimed


def _give_up(session: Session, delivery_id: uuid.UUID, attempts: int, now: datetime) -> None:
    """An abandoned delivery whose attempts are spent: ``failed`` (unless it changed meanwhile)."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.DELIVERING,
            WebhookDelivery.attempts == attempts,
            WebhookDelivery.lease_expires_at < now,
        )
        .values(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
            last_status_code=None,
            last_error="the sender stopped responding during the last attempt (attempts spent)",
            updated_at=now,
        )
    )


def retry_delay(schedule: Sequence[float], attempt: int) -> float | None:
    """The wait after failed attempt number ``attempt`` (1-based); None: the schedule is spent."""
    return schedule[attempt - 1] if attempt <= len(schedule) else None


def record_attempt(
    session: Session,
    delivery: ClaimedDelivery,
    outcome: AttemptOutcome,
    now: datetime,
    schedule: Sequence[float],
) -> datetime | None:
    """Write the attempt if the lease is still ours (the endpoint may have been deleted meanwhile, or
    the lease taken back). Returns when the next attempt is due, if one is."""
    delay = None if outcome.succeeded else retry_delay(schedule, delivery.attempt)
    if outcome.succeeded:
        status, next_at = DeliveryStatus.SUCCEEDED, None
    elif delay is None:
        status, next_at = DeliveryStatus.FAILED, None
    else:
        status, next_at = DeliveryStatus.PENDING, now + timedelta(seconds=delay)
    written = session.execute(
        update(WebhookDelivery)
        .where(
            and_(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.status == DeliveryStatus.DELIVERING,
                WebhookDelivery.lease_owner == delivery.owner,
                WebhookDelivery.attempts == delivery.attempt,
            )
        )
        .values(
            status=status,
            next_attempt_at=next_at,
            lease_owner=None,
            lease_expires_at=None,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            last_response=outcome.response,
            updated_at=now,
        )
        .returning(WebhookDelivery.id)
    ).scalar_one_or_none()
    if written is None:
        return None
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            response=outcome.response,
            duration_ms=outcome.duration_ms,
        )
    )
    return next_at


def redeliver(session: Session, delivery_id: uuid.UUID, now: datetime) -> bool:
    """Send a delivery again now, with its message id, on a fresh schedule (its history stays).
    False: a sender holds it at this moment."""
    moved = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != DeliveryStatus.DELIVERING)
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(WebhookDelivery.id)
    ).scalar_one_or_none()
    if moved is None:
        return False
    mark_for_wake_up(session)
    return True
