"""Checking a pooled connection before use only when it sat idle for a while.

SQLAlchemy's ``pool_pre_ping`` sends one more round trip before every checkout, even for a connection
that was fine milliseconds ago (a one-image explanation checks out several). A connection used
within the last ``idle_s`` is handed out as it is; one idle longer (or never checked in) is pinged
first, and one that fails the ping is replaced (``DisconnectionError`` makes the pool reconnect).
What is given up: a connection the database dropped within the last ``idle_s`` fails the statement
that uses it; SQLAlchemy then invalidates the whole pool, so each process sees that once per
outage, as it would any query in flight when the database went away.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_SECONDS = 2.0
_LAST_USED = "batchcam_last_used"


def ping_after_idle(engine: Engine, idle_s: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Install the check on ``engine`` (instead of ``pool_pre_ping``)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()  # a fresh connection needs no ping

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection failed its ping: {error}") from error
