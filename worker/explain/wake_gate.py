"""One wake-up message per burst of explanations for a model, not one per request (Redis brokers).

With dynamic batching one message's batch ends the rows of many requests; the other requests'
messages then cost the API a send and the worker a receive for nothing, and that per-message work
was most of what a batched request cost (docs/BENCHMARKS.md). So a key per model in the broker's
Redis says "a wake-up for this model is on its way": after committing its row, a sender sets the key
(``SET NX``) and sends a message only if it set it; the worker deletes the key when that message's
task starts, before it claims the model's queued rows.

No wake-up is lost: a row committed before a sender found the key set is seen by the claim of the
worker that deletes the key afterwards; if that delete came before the sender looked, someone set
the key in between and sent a message, whose worker deletes it and claims later still. A worker
that could not take all the rows it saw queued wakes the model again the same way. The key expires
after ``WAKE_TTL_MS``, so a message the broker lost, or a worker killed before it deleted the key,
holds back other wake-ups only that long; rows no later request wakes are sent again by the sweep.
"""

from __future__ import annotations

import logging
import uuid

import redis

from worker.celery_app import REDIS_SCHEMES

log = logging.getLogger(__name__)

KEY_PREFIX = "batchcam:explain-wake:"
# Longer than a message normally waits in the queue, short enough that a lost one delays little: a
# key that expires while its message still waits costs only one more message.
WAKE_TTL_MS = 10_000
TIMEOUT_SECONDS = 2.0


class WakeGate:
    """The per-model "wake-up on its way" keys in one Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def arm(self, model_id: uuid.UUID) -> bool:
        """True: no wake-up was on its way, so the caller must send one now. Redis trouble answers
        True too: a message more is harmless, a message less could strand a row until the sweep."""
        try:
            return bool(self._client.set(key(model_id), b"1", nx=True, px=WAKE_TTL_MS))
        except redis.RedisError:
            log.warning("could not set the wake-up key of model %s; sending anyway", model_id, exc_info=True)
            return True

    def disarm(self, model_id: uuid.UUID) -> None:
        """Called by the woken worker before it claims: later rows need (and get) a wake-up of their
        own. If Redis cannot be reached the key expires by itself."""
        try:
            self._client.delete(key(model_id))
        except redis.RedisError:
            log.warning("could not delete the wake-up key of model %s", model_id, exc_info=True)


def key(model_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{model_id}"


def open_wake_gate(broker_url: str) -> WakeGate | None:
    """The gate in the broker's own Redis; None for other brokers (each request then sends its own
    message, as the embedded default's folder broker does)."""
    if not broker_url.startswith(REDIS_SCHEMES):
        return None
    return WakeGate(
        redis.Redis.from_url(
            broker_url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
    )
