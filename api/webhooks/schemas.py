"""Webhook endpoints and deliveries at the HTTP boundary."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from api.http.pages import PageLinks
from persistence.webhooks.deliveries import DeliveryStatus
from persistence.webhooks.events import EventType

if TYPE_CHECKING:
    WebhookEventType = EventType
    WebhookDeliveryStatus = DeliveryStatus
else:
    # Named per resource in the document, so a generated client gets types of these names.
    WebhookEventType = StrEnum("WebhookEventType", {e.name: e.value for e in EventType}, module=__name__)
    WebhookDeliveryStatus = StrEnum(
        "WebhookDeliveryStatus", {s.name: s.value for s in DeliveryStatus}, module=__name__
    )

URL_DESCRIPTION = (
    "Where events are POSTed: https:// (http:// only where the operator allows it). Its host must "
    "resolve to public addresses only (private, loopback, link-local, reserved and multicast ones are "
    "refused unless the operator allows them); redirects are not followed."
)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description=URL_DESCRIPTION)
    events: list[WebhookEventType] = Field(
        min_length=1, max_length=32, description="The events to receive (duplicates are ignored)."
    )
    description: str | None = Field(None, max_length=500, description="Your note: what receives them.")


class WebhookLinks(BaseModel):
    webhook: str
    deliveries: str


class WebhookResource(BaseModel):
    """A registered endpoint. Its secret is shown only when it is made (creation, rotation)."""

    id: uuid.UUID
    url: str
    events: list[WebhookEventType]
    description: str | None
    created_at: datetime
    secret_rotated_at: datetime | None = Field(
        description="The last rotation; the secret before it also signs until previous_secret_expires_at."
    )
    previous_secret_expires_at: datetime | None
    links: WebhookLinks


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="whsec_ and base64: the key that signs deliveries (Standard Webhooks). Shown once: "
        "store it now."
    )


class CreatedWebhook(WebhookResource, WebhookSecret):
    """The new endpoint, with its secret: the only time it is shown."""


class RotatedSecret(WebhookSecret):
    """The new secret, shown once. Until ``previous_secret_expires_at`` deliveries carry a signature by
    the previous secret too (space-separated in ``webhook-signature``), so receivers can switch."""

    previous_secret_expires_at: datetime


class WebhookPage(BaseModel):
    items: list[WebhookResource]
    next_cursor: str | None
    links: PageLinks


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when none came.")
    error: str | None = Field(description="Why the attempt failed, when it did.")
    response: str | None = Field(description="The start of the receiver's answer (at most 1 KiB).")
    duration_ms: int


class DeliveryLinks(BaseModel):
    redeliver: str


class WebhookDelivery(BaseModel):
    """One event for one endpoint, with its attempts (the latest 20, oldest first)."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    message_id: str = Field(
        description="The webhook-id header: the same on every retry and redelivery, for deduplication."
    )
    event_type: WebhookEventType
    status: WebhookDeliveryStatus
    payload: dict[str, Any] = Field(description="The event as sent: type, timestamp, data.")
    attempt_count: int = Field(description="Attempts in the current schedule (a redelivery restarts it).")
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempts: list[DeliveryAttempt]
    links: DeliveryLinks


class DeliveryPage(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None
    links: PageLinks
