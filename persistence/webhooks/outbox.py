"""The outbox: deliveries written in the caller's transaction, so they commit or roll back with the
change they tell (docs/ARCHITECTURE.md §7.5). No event is lost when a worker dies after the commit, and
none is sent for a change that rolled back. The sender (``worker.webhooks``) reads them afterwards.

The hooks sit where jobs and explanations change: ``persistence.jobs.leases.record_event`` (every job
state change and epoch is one) and every place an explanation ends (``persistence.explanations``).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, select
from sqlalchemy.orm import Session

from persistence.models import Explanation, Job, WebhookDelivery, WebhookEndpoint, utcnow
from persistence.webhooks.events import EventType, ended_data, ended_event, envelope, epoch_data
from persistence.webhooks.wakeup import mark_for_wake_up


def new_message_id() -> str:
    """A Standard Webhooks message id: kept by every retry and redelivery of one delivery."""
    return "msg_" + secrets.token_urlsafe(18)


def subscribed_endpoints(
    session: Session, tenant: uuid.UUID | ScalarSelect[Any], event: EventType
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(endpoint id, tenant id) of the tenant's endpoints subscribed to ``event``: most changes find
    none, and then need no more reading."""
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.tenant_id, WebhookEndpoint.events).where(
            WebhookEndpoint.tenant_id == tenant
        )
    ).all()
    return [(endpoint_id, tenant_id) for endpoint_id, tenant_id, events in endpoints if str(event) in events]


def add_deliveries(
    session: Session,
    endpoints: list[tuple[uuid.UUID, uuid.UUID]],
    event: EventType,
    payload: dict[str, Any],
) -> int:
    """One pending delivery per endpoint (from ``subscribed_endpoints``); how many."""
    now = utcnow()
    for endpoint_id, tenant_id in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                tenant_id=tenant_id,
                message_id=new_message_id(),
                event_type=str(event),
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    if endpoints:
        mark_for_wake_up(session)
    return len(endpoints)


def job_event_recorded(session: Session, job_id: uuid.UUID, type_: str, data: dict[str, Any]) -> None:
    """A job's event was recorded: a terminal ``state`` event or an ``epoch`` goes out."""
    tenant = select(Job.tenant_id).where(Job.id == job_id).scalar_subquery()
    if type_ == "epoch":
        event = EventType.JOB_EPOCH
        if endpoints := subscribed_endpoints(session, tenant, event):
            payload = envelope(event, utcnow(), epoch_data(job_id, data["epoch"], data["metrics"]))
            add_deliveries(session, endpoints, event, payload)
        return
    ended = ended_event("job", data["state"]) if type_ == "state" else None
    if ended is None or not (endpoints := subscribed_endpoints(session, tenant, ended)):
        return
    row = session.execute(
        select(Job.state, Job.model_id, Job.failure_reason, Job.failure_message).where(Job.id == job_id)
    ).one()
    add_deliveries(session, endpoints, ended, envelope(ended, utcnow(), ended_data(job_id, *row)))


# Ended explanations whose tenant has a webhook endpoint; built once, bound per batch (ARCHITECTURE
# §7.3: hot path).
ENDED_WITH_ENDPOINTS = select(
    Explanation.id,
    Explanation.tenant_id,
    Explanation.state,
    Explanation.model_id,
    Explanation.failure_reason,
    Explanation.failure_message,
).where(
    Explanation.id.in_(bindparam("rows", expanding=True)),
    Explanation.tenant_id.in_(select(WebhookEndpoint.tenant_id)),
)


def explanations_ended(session: Session, explanation_ids: list[uuid.UUID], now: datetime) -> None:
    """These explanations just reached a terminal state (in this transaction). One query for a batch
    whose tenant has no endpoint: the explain hot path pays no more."""
    if not explanation_ids:
        return
    rows = session.execute(ENDED_WITH_ENDPOINTS, {"rows": explanation_ids}).all()
    for explanation_id, tenant_id, state, model_id, reason, message in rows:
        event = ended_event("explanation", state)
        if event is not None and (endpoints := subscribed_endpoints(session, tenant_id, event)):
            data = ended_data(explanation_id, state, model_id, reason, message)
            add_deliveries(session, endpoints, event, envelope(event, now, data))
