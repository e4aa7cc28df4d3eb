"""What the webhook tests share: endpoints written directly, a sender context aimed at the local
receiver, a wake-up recorder, and a job taken through its lease to an end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.jobs import leases as job_leases
from persistence.models import Job, WebhookDelivery, WebhookEndpoint, utcnow
from persistence.states import FailureReason, JobState
from persistence.webhooks.destinations import DestinationPolicy
from persistence.webhooks.secrets import new_secret
from worker.webhooks.sender import SenderContext, new_client

LOCAL = DestinationPolicy.of(["127.0.0.1/32"], allow_http=True)


@dataclass
class WakeRecorder:
    """The injected wake-up: records the delays it was asked for."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, delay_s: float = 0.0) -> None:
        self.delays.append(delay_s)


def add_endpoint(
    sessions: sessionmaker[Session], tenant_id: uuid.UUID, url: str, events: list[str]
) -> tuple[uuid.UUID, str]:
    with transaction(sessions) as session:
        endpoint = WebhookEndpoint(tenant_id=tenant_id, url=url, events=events, secret=new_secret())
        session.add(endpoint)
        session.flush()
        return endpoint.id, endpoint.secret


def sender(sessions: sessionmaker[Session], **overrides: Any) -> SenderContext:
    values: dict[str, Any] = {
        "sessions": sessions,
        "client": new_client(1.0, 2.0),
        "policy": LOCAL,
        "schedule": [0.2, 0.2],
        "lease_for": timedelta(seconds=5),
        "max_response_bytes": 1024,
        "owner": "test-sender",
    }
    return SenderContext(**(values | overrides))


def deliveries(sessions: sessionmaker[Session], endpoint_id: uuid.UUID) -> list[WebhookDelivery]:
    with sessions() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        return list(session.scalars(query.order_by(WebhookDelivery.created_at)))


def run_job(
    sessions: sessionmaker[Session], tenant_id: uuid.UUID, end: JobState, epochs: int = 1
) -> uuid.UUID:
    """A job claimed, with ``epochs`` epochs recorded, ended ``end`` (each step its own transaction)."""
    with transaction(sessions) as session:
        job = Job(tenant_id=tenant_id, spec={"dataset": "shapes"}, progress={}, state=JobState.QUEUED)
        session.add(job)
        session.flush()
        job_id = job.id
    with transaction(sessions) as session:
        lease = job_leases.claim(session, job_id, "w:1", timedelta(seconds=60), utcnow())
        assert lease is not None
    for epoch in range(1, epochs + 1):
        with transaction(sessions) as session:
            assert job_leases.record_epoch(session, lease, epoch, {"loss": 1.0 / epoch}, utcnow())
    with transaction(sessions) as session:
        reason = FailureReason.NAN_LOSS if end == JobState.FAILED else None
        assert job_leases.finish(session, lease, end, utcnow(), reason=reason, message=reason and "diverged")
    return job_id
