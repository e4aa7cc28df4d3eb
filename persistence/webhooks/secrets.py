"""Signing secrets: made here, shown to the tenant once, kept to sign every delivery."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from persistence.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits, as Svix gives out; Standard Webhooks asks for 24 to 64


def new_secret() -> str:
    """``whsec_`` and base64: the form ``standardwebhooks.Webhook(secret)`` reads."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and the one it replaced while that one's grace period lasts: a delivery
    carries a signature by each, so receivers switch secrets at their own pace."""
    if previous is not None and previous_expires_at is not None and previous_expires_at > now:
        return [current, previous]
    return [current]


def rotate(endpoint: WebhookEndpoint, now: datetime, grace_until: datetime) -> str:
    """A new secret; the current one keeps signing until ``grace_until``.

    While an earlier rotation's grace period lasts, only the current secret is replaced and the
    previous one keeps its end: a retried rotation (its answer lost) must not retire the secret the
    receivers still hold in favour of one nobody saw."""
    in_grace = endpoint.previous_secret_expires_at is not None and endpoint.previous_secret_expires_at > now
    if not in_grace:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = grace_until
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    return endpoint.secret
