"""When to send a request again, and after how long.

Retried: connection failures (the request may or may not have reached the service, which is why every
submission carries an ``Idempotency-Key`` reused by its retries), 429 and 503 (honouring
``Retry-After``), and 409 ``idempotency_key_in_progress`` (the first attempt is still being processed).
Never another 4xx: the same request would fail the same way. Other 5xx are not retried either: they
mean a bug on the service's side, and repeating a non-idempotent call could hide it.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

from batchcam_client.errors import problem_of

RETRIED_STATUSES = frozenset({429, 503})
IN_PROGRESS_CODE = "idempotency_key_in_progress"


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delays grow as ``base × 2^(n−1)`` up to ``max_delay``,
    with full jitter (a random share of it) so that many clients do not retry in step. A server's
    ``Retry-After`` is honoured as a minimum, capped at ``max_retry_after``."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def after_error(self, attempt: int) -> float | None:
        """The delay before the next attempt after a connection failure, or None to give up."""
        return self.backoff(attempt) if attempt < self.max_attempts else None

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """The delay before the next attempt after this (fully read) response, or None to keep it."""
        if attempt >= self.max_attempts or not is_retryable(response):
            return None
        waited = retry_after_seconds(response)
        backoff = self.backoff(attempt)
        return backoff if waited is None else max(backoff, min(waited, self.max_retry_after))


def is_retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRIED_STATUSES:
        return True
    return response.status_code == 409 and problem_of(response).get("code") == IN_PROGRESS_CODE


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
