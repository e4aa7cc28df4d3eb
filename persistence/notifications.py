"""Change notifications from Postgres (``LISTEN``/``NOTIFY``): wake a waiter instead of polling its row.

Triggers (migration 0004) notify ``explanation_ended`` with an explanation's id when it reaches a
terminal state, and ``job_changed`` with a job's id when its row changes or it records an event;
``key_revoked`` (migration 0007) carries the id of a revoked or deleted API key. The
notification is sent when the writing transaction commits, by whichever process wrote it (a worker,
the sweep, the API's cancel), so a waiter learns of an end within a millisecond or two.

Why Postgres and not Redis pub/sub: the database is already where an end becomes true, the trigger
covers every path that ends a row (no writer can forget to publish), and a notification can never
arrive before the row it announces is visible. The broker stays a wake-up channel for workers only.

A notification is a hint, never the truth: a waiter always re-reads its row, and keeps a slow poll as
a fallback (a dropped listener connection, SQLite, a notification lost in a reconnect). One
``ChangeListener`` per process holds one connection, whatever the number of waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from enum import StrEnum

import psycopg
from sqlalchemy import make_url

log = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)  # then every 5 s while the database stays away


class Channel(StrEnum):
    EXPLANATION_ENDED = "batchcam_explanation_ended"
    JOB_CHANGED = "batchcam_job_changed"
    KEY_REVOKED = "batchcam_key_revoked"


# Told every notification on its channel (the payload), or None when some may have been missed.
Subscriber = Callable[[str | None], None]


def libpq_url(database_url: str) -> str | None:
    """A SQLAlchemy Postgres URL as psycopg takes it; None for other databases (no notifications)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Wakes the waiters of a (channel, id) when a notification for it arrives.

    ``live`` says whether notifications are flowing now; while it is false, waiters poll as they
    did before notifications existed. Run ``listen()`` as a task of the event loop the waiters use.
    """

    def __init__(self, conninfo: str | None, connect_timeout_s: float = 5.0) -> None:
        self.conninfo = conninfo
        self.connect_timeout_s = connect_timeout_s
        self.live = False
        self._failures = 0  # in a row, for the reconnect backoff
        self._waiters: defaultdict[tuple[Channel, str], set[asyncio.Event]] = defaultdict(set)
        self._subscribers: defaultdict[Channel, list[Subscriber]] = defaultdict(list)

    def subscribe(self, channel: Channel, subscriber: Subscriber) -> None:
        """Call ``subscriber`` (in the event loop) with every payload on ``channel``, and with None
        whenever the connection is lost or made again: notifications may have been missed then."""
        self._subscribers[channel].append(subscriber)

    @contextlib.contextmanager
    def watch(self, channel: Channel, key: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``key`` is notified on ``channel`` (or the listener reconnects: a
        notification may have been missed, so every waiter re-reads). Watch before reading the row."""
        event = asyncio.Event()
        waiters = self._waiters[(channel, key)]
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop((channel, key), None)

    async def listen(self) -> None:
        """Hold the listening connection until cancelled, reconnecting with backoff."""
        if self.conninfo is None:
            return
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError) as error:
                if self._failures == 0:
                    log.warning("change notifications lost (%s); waiters poll until they are back", error)
            finally:
                self.live = False
            self._wake_all()
            await asyncio.sleep(RECONNECT_SECONDS[min(self._failures, len(RECONNECT_SECONDS) - 1)])
            self._failures += 1

    async def _listen_once(self) -> None:
        assert self.conninfo is not None
        async with await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=int(self.connect_timeout_s)
        ) as connection:
            for channel in Channel:
                await connection.execute(f"LISTEN {channel.value}")
            self.live, self._failures = True, 0
            self._wake_all()  # anything that ended while we were away is read again
            async for notification in connection.notifies():
                self._wake(Channel(notification.channel), notification.payload)

    def _wake(self, channel: Channel, key: str) -> None:
        for subscriber in self._subscribers.get(channel, ()):
            subscriber(key)
        for event in self._waiters.get((channel, key), ()):
            event.set()

    def _wake_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber(None)
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()


async def wait_for_change(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed; then clears it for the next wait."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(seconds, 0.0))
    event.clear()
