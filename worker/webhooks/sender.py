"""Sending due webhook deliveries (docs/ARCHITECTURE.md §7.5).

A round claims a few due deliveries under a short lease and commits, so the HTTP calls hold no
transaction; sends them (a small thread pool: one slow receiver does not hold up the others), and
records each attempt in its own transaction. The receiver's address is checked again before each
send (DNS answers change), redirects are not followed, and only the first bytes of an answer are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.models import utcnow
from persistence.webhooks.deliveries import AttemptOutcome, ClaimedDelivery, claim_due, record_attempt
from persistence.webhooks.destinations import DestinationPolicy, UnsafeDestinationError, check_destination
from persistence.webhooks.wakeup import WakeWebhooks
from worker.webhooks.metrics import observe_attempt
from worker.webhooks.signing import body_of, signed_headers

log = logging.getLogger(__name__)
BATCH = 16  # deliveries claimed per round
SENDERS = 8  # sent at once
MAX_ROUNDS = 20  # per task: a backlog is left to the next wake-up rather than hold the worker


@dataclass(frozen=True)
class SenderContext:
    sessions: sessionmaker[Session]
    client: httpx.Client  # no redirects, short timeouts (``new_client``)
    policy: DestinationPolicy
    schedule: Sequence[float]  # seconds before each retry
    lease_for: timedelta  # longer than one send can take
    max_response_bytes: int
    owner: str
    wake: WakeWebhooks | None = None  # to come back for a retry due before the next sweep
    sweep_interval_s: float = 10.0
    clock: Callable[[], datetime] = utcnow


def new_client(connect_timeout_s: float, read_timeout_s: float) -> httpx.Client:
    timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


def lease_for(connect_timeout_s: float, read_timeout_s: float) -> timedelta:
    """Room for one send (connect, write, read) with margin; a dead sender's deliveries wait no longer."""
    return timedelta(seconds=2 * (connect_timeout_s + 2 * read_timeout_s) + 5)


def deliver_due(context: SenderContext) -> int:
    """Send what is due until nothing is (or ``MAX_ROUNDS``); how many attempts were recorded."""
    recorded = 0
    soonest: datetime | None = None
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook") as pool:
        for _ in range(MAX_ROUNDS):
            with transaction(context.sessions) as session:
                spent = len(context.schedule) + 1
                claimed = claim_due(session, context.owner, context.clock(), context.lease_for, BATCH, spent)
            if not claimed:
                break
            for delivery, outcome in zip(claimed, pool.map(lambda d: send(context, d), claimed), strict=True):
                with transaction(context.sessions) as session:
                    next_at = record_attempt(session, delivery, outcome, context.clock(), context.schedule)
                recorded += 1
                observe_attempt(outcome)
                if next_at is not None and (soonest is None or next_at < soonest):
                    soonest = next_at
        else:
            if len(claimed) == BATCH:  # every round found a full batch: more may wait, come back at once
                soonest = context.clock()
    _come_back(context, soonest)
    return recorded


def _come_back(context: SenderContext, soonest: datetime | None) -> None:
    """A retry due before the next sweep gets a delayed wake-up of its own (seconds-long schedules);
    later ones are left to the sweep, so no broker message waits for hours."""
    if soonest is None or context.wake is None:
        return
    delay = max(0.0, (soonest - context.clock()).total_seconds())
    if delay < context.sweep_interval_s:
        try:
            context.wake(delay)
        except Exception:  # the sweep sends it anyway
            log.warning("could not schedule the webhook sender's next round", exc_info=True)


def send(context: SenderContext, delivery: ClaimedDelivery) -> AttemptOutcome:
    """One POST; never raises (a refused address, a timeout, a reset are the attempt's error)."""
    started = time.monotonic()
    try:
        check_destination(delivery.url, context.policy)
        body = body_of(delivery.payload)
        headers = signed_headers(delivery.message_id, context.clock(), body, delivery.secrets)
        with context.client.stream("POST", delivery.url, content=body.encode(), headers=headers) as response:
            excerpt = _excerpt(response, context.max_response_bytes)
            error = _redirect_error(response)
            return AttemptOutcome(response.status_code, error, excerpt, _elapsed_ms(started))
    except UnsafeDestinationError as refused:
        return AttemptOutcome(None, f"refused: {refused}", None, _elapsed_ms(started))
    except httpx.HTTPError as error:
        return AttemptOutcome(None, f"{type(error).__name__}: {error}"[:500], None, _elapsed_ms(started))


def _excerpt(response: httpx.Response, limit: int) -> str | None:
    """At most ``limit`` bytes of the answer, read no further than that."""
    if limit <= 0:
        return None
    kept = bytearray()
    for chunk in response.iter_bytes():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return kept.decode("utf-8", errors="replace") if kept else None


def _redirect_error(response: httpx.Response) -> str | None:
    if response.is_redirect:
        return f"redirects are not followed (Location: {response.headers.get('location', '')[:200]})"
    return None


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
