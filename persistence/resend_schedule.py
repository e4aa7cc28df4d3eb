"""When the sweep sends a queued row's message again.

A row nobody claimed may have lost its message, or may merely wait behind long runs. Sending again
every period would pile duplicates into the queue for the second kind, so the spacing grows with the
wait: a row is sent again once it has been untouched for a period *and* for half the time it has
waited (so at about 1, 2, 4, 8 … periods), never more than ``MAX_SPACING_PERIODS`` periods apart.
A lost message costs a young row one period and an old one at most that cap.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from persistence.models import Explanation, Job

MAX_SPACING_PERIODS = 6


def resend_due(created_at: datetime, updated_at: datetime, now: datetime, period: timedelta) -> bool:
    spacing = max(period, min((now - created_at) / 2, period * MAX_SPACING_PERIODS))
    return now - updated_at >= spacing


def touch_due_rows(
    session: Session, table: type[Job] | type[Explanation], queued: str, now: datetime, period: timedelta
) -> list[uuid.UUID]:
    """The ids of ``table``'s rows in state ``queued`` whose message is due again; they are touched,
    so the next sweep counts their spacing from now."""
    candidates = session.execute(
        select(table.id, table.created_at, table.updated_at).where(
            table.state == queued, table.updated_at <= now - period
        )
    ).all()
    due = [row_id for row_id, created, updated in candidates if resend_due(created, updated, now, period)]
    if due:
        session.execute(update(table).where(table.id.in_(due), table.state == queued).values(updated_at=now))
    return due


def touch_queued_since(
    session: Session, table: type[Job] | type[Explanation], queued: str, since: datetime, now: datetime
) -> list[uuid.UUID]:
    """The ids of ``table``'s rows in state ``queued`` touched at or after ``since`` (their message may
    have been lost with the broker, or never sent while it was away); touched as ``touch_due_rows``."""
    due = list(session.scalars(select(table.id).where(table.state == queued, table.updated_at >= since)))
    if due:
        session.execute(update(table).where(table.id.in_(due), table.state == queued).values(updated_at=now))
    return due
