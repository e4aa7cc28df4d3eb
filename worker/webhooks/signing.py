"""One delivery as it goes on the wire: a Standard Webhooks request (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; HMAC-SHA256 by the ``standardwebhooks`` package)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

USER_AGENT = "batchcam-webhooks/1"


def body_of(payload: dict[str, Any]) -> str:
    """The exact bytes signed and sent (compact JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(message_id: str, at: datetime, body: str, secrets: list[str]) -> dict[str, str]:
    """One ``v1,`` signature per secret, space-separated: during a rotation's grace period a receiver
    holding either the old or the new secret verifies the delivery."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
