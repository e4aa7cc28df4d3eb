"""Did the broker lose messages, or miss sends, since the last sweep?

The rows are the outbox (docs/ARCHITECTURE.md §6.7): a queued row whose message is gone is sent
again by the stale re-send, but that waits a whole period (5 minutes) or more. Two broker events
lose messages wholesale, and each sweep looks for both through one key it writes into the broker's
own database, holding the time of the sweep:

- **the broker lost its data** (a Redis that keeps nothing on disk restarted, or a failover to an
  empty replica): the key is gone, so every queued row is sent again;
- **the broker was away** (unreachable, or restarting): beat could not send the sweep either, so the
  key is older than ``GAP_PERIODS`` sweep intervals; every queued row touched since the last sweep
  that reached the broker is sent again (their wake-ups may have failed while it was away).

In normal operation the key is one interval old and nothing more is sent. A sweep that merely ran
late (its worker was busy) sends the rows of that gap twice; a duplicate message finds its row
taken. Only Redis brokers (``redis://``, ``rediss://``) can be asked; with any other broker the
stale re-send remains the only recovery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis

from worker.celery_app import REDIS_SCHEMES

log = logging.getLogger(__name__)

MARKER_KEY = "batchcam:last-sweep"
GAP_PERIODS = 2.5  # beat sends a sweep every interval; two missed in a row is an outage
TIMEOUT_SECONDS = 5.0
EVERYTHING = datetime.min.replace(tzinfo=UTC)


def resend_queued_since(broker_url: str, now: datetime, interval: timedelta) -> datetime | None:
    """Queued rows touched at or after the answer are sent again (``EVERYTHING``: all of them);
    ``None``: the broker kept what it had, nothing more to send.

    The first sweep against a new broker answers ``EVERYTHING``: every queued row is sent once. A
    broker that cannot be asked answers ``None``: nothing could be sent to it anyway, and the first
    sweep after it is back sees the gap.
    """
    if not broker_url.startswith(REDIS_SCHEMES):
        return None
    client = redis.Redis.from_url(broker_url, socket_timeout=TIMEOUT_SECONDS)
    try:
        last = client.set(MARKER_KEY, now.isoformat(), get=True)
    except redis.RedisError:
        log.warning("could not read the broker's sweep marker; sending nothing extra", exc_info=True)
        return None
    finally:
        client.close()
    if last is None:
        log.warning("the broker has no sweep marker (new, or it lost its data): every queued row is sent")
        return EVERYTHING
    previous = datetime.fromisoformat(last.decode() if isinstance(last, bytes) else str(last))
    if now - previous > interval * GAP_PERIODS:
        log.warning("no sweep reached the broker since %s: queued rows since then are sent", previous)
        return previous - interval  # a wake-up that failed just before that sweep counts too
    return None
