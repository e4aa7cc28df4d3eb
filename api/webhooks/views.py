"""Webhook endpoints and deliveries as the API shows them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from api.webhooks.schemas import (
    DeliveryAttempt,
    DeliveryLinks,
    WebhookDelivery,
    WebhookLinks,
    WebhookResource,
)
from persistence.models import WebhookAttempt, WebhookEndpoint
from persistence.models import WebhookDelivery as DeliveryRow

WEBHOOKS_PATH = "/v1/webhooks"


def webhook_path(webhook_id: uuid.UUID) -> str:
    return f"{WEBHOOKS_PATH}/{webhook_id}"


def webhook_resource(endpoint: WebhookEndpoint) -> WebhookResource:
    rotated = endpoint.updated_at if endpoint.previous_secret is not None else None
    return WebhookResource(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        description=endpoint.description,
        created_at=endpoint.created_at,
        secret_rotated_at=rotated,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        links=WebhookLinks(
            webhook=webhook_path(endpoint.id), deliveries=f"{webhook_path(endpoint.id)}/deliveries"
        ),
    )


def delivery_resource(row: DeliveryRow, attempts: Sequence[WebhookAttempt]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.endpoint_id,
        message_id=row.message_id,
        event_type=row.event_type,
        status=row.status,
        payload=row.payload,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        attempts=[
            DeliveryAttempt(
                at=a.at,
                status_code=a.status_code,
                error=a.error,
                response=a.response,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ],
        links=DeliveryLinks(
            redeliver=f"{webhook_path(row.endpoint_id)}/deliveries/{row.id}/redeliver",
        ),
    )
