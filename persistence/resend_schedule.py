"""When the sweep sends a queued row's message again.

A row nobody claimed may have lost its message, or may merely wait behind long runs. Sending again
every period would pile duplicates into the queue for the second kind, so the spacing grows with the
wait: a row is sent again once it has been untouched for a period *and* for half the time it has
waited (so at about 1, 2, 4, 8 … periods), never more than ``MAX_SPACING_PERIODS`` periods apart.
A lost message costs a young row one period and an old one at most that cap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Row

MAX_SPACING_PERIODS = 6


def resend_due(created_at: datetime, updated_at: datetime, now: datetime, period: timedelta) -> bool:
    spacing = max(period, min((now - created_at) / 2, period * MAX_SPACING_PERIODS))
    return now - updated_at >= spacing


def due_ids(
    candidates: Iterable[Row[uuid.UUID, datetime, datetime]], now: datetime, period: timedelta
) -> list[uuid.UUID]:
    """The (id, created_at, updated_at) candidates whose message is due again."""
    return [row_id for row_id, created, updated in candidates if resend_due(created, updated, now, period)]
