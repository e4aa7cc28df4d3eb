"""``?wait=SECONDS``: hold a submission's response until the explanation ends, or the time is up.

Polling the row (fast at first, then backing off) keeps the API stateless: whichever worker runs the
explanation, the row is where its end becomes visible.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from persistence.explanation_states import TERMINAL_EXPLANATION_STATES
from persistence.models import Explanation

MAX_WAIT_SECONDS = 30.0
FIRST_POLL_SECONDS = 0.005
MAX_POLL_SECONDS = 0.02  # a finished explanation is seen within 20 ms (a poll is one primary-key read)


async def wait_until_finished(
    sessions: sessionmaker[Session], explanation_id: uuid.UUID, seconds: float
) -> Explanation | None:
    """The finished row, or None when it did not finish within ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = FIRST_POLL_SECONDS
    while True:
        row = await run_in_threadpool(read_finished, sessions, explanation_id)
        if row is not None:
            return row
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, MAX_POLL_SECONDS)


def read_finished(sessions: sessionmaker[Session], explanation_id: uuid.UUID) -> Explanation | None:
    with sessions() as session:
        row = session.scalar(select(Explanation).where(Explanation.id == explanation_id))
    return row if row is not None and row.state in TERMINAL_EXPLANATION_STATES else None
