"""``?wait=SECONDS``: hold a submission's response until the explanation ends, or the time is up.

The row is where an end becomes visible, whichever worker ran it. On Postgres the end also arrives
as a notification (``persistence.notifications``): the waiter sleeps until it is woken and then reads
the row, so a 5 ms explanation is answered in about 5 ms without polling. Without notifications
(SQLite, or while the listener reconnects) it polls, fast at first and then backing off; with them it
still re-reads every ``NOTIFIED_POLL_SECONDS`` in case one was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from persistence.models import Explanation
from persistence.notifications import ChangeListener, Channel, wait_for_change
from persistence.states import TERMINAL_STATES

MAX_WAIT_SECONDS = 30.0
FIRST_POLL_SECONDS = 0.005
# Each pause is at most a tenth of the time waited so far (a quick explanation is seen within a few
# ms, a 1 s one within 100 ms) and never above 250 ms: a 30 s wait costs ~160 reads, not ~1,500.
POLL_SHARE_OF_WAITED = 0.1
MAX_POLL_SECONDS = 0.25
NOTIFIED_POLL_SECONDS = 2.0


class WaitSlots:
    """How many submissions this API process holds open with ``?wait`` (their polls are the load a
    burst of waiters puts on the database). Used from the event loop only, so a plain count suffices."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0

    @contextmanager
    def take(self) -> Iterator[bool]:
        """Yields whether a slot was free; a taken slot is given back when the block ends."""
        if self.held >= self.capacity:
            yield False
            return
        self.held += 1
        try:
            yield True
        finally:
            self.held -= 1


async def wait_until_finished(
    sessions: sessionmaker[Session],
    listener: ChangeListener,
    explanation_id: uuid.UUID,
    seconds: float,
    *,
    watched: asyncio.Event | None = None,
) -> Explanation | None:
    """The finished row, or None when it did not finish within ``seconds``. ``watched``: a watch on
    the row taken before it was committed, so no end can have been missed: the first read waits for
    a wake-up (or the first poll) instead of finding the row just queued."""
    started = time.monotonic()
    deadline = started + seconds
    with contextlib.ExitStack() as stack:
        read_now = watched is None
        ended = watched or stack.enter_context(listener.watch(Channel.EXPLANATION_ENDED, str(explanation_id)))
        while True:
            if read_now:
                row = await run_in_threadpool(read_finished, sessions, explanation_id)
                if row is not None:
                    return row
            read_now = True
            now = time.monotonic()
            if now >= deadline:
                return None
            pause = NOTIFIED_POLL_SECONDS if listener.live else poll_pause(now - started)
            await wait_for_change(ended, min(pause, deadline - now))


def poll_pause(waited: float) -> float:
    return min(max(FIRST_POLL_SECONDS, POLL_SHARE_OF_WAITED * waited), MAX_POLL_SECONDS)


# Built once, bound per read (ARCHITECTURE §7.3: hot path).
READ_EXPLANATION = select(Explanation).where(Explanation.id == bindparam("id"))


def read_finished(sessions: sessionmaker[Session], explanation_id: uuid.UUID) -> Explanation | None:
    with sessions() as session:
        row = session.scalar(READ_EXPLANATION, {"id": explanation_id})
    return row if row is not None and row.state in TERMINAL_STATES else None
