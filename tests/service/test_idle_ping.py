"""Pooled connections are pinged only after idling (``persistence.idle_ping``): a connection whose
server process was killed is replaced before use once it sat idle, and is handed out unchecked (its
statement fails) while it was used within ``idle_s``, which is what spares steady use the round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from persistence.idle_ping import ping_after_idle
from service.postgres import fresh_database


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_idle_ping") as url:
        yield url


def engine_for(url: str, idle_s: float) -> Engine:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    ping_after_idle(engine, idle_s)
    return engine


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill_backend(url: str, pid: int) -> None:
    killer = create_engine(url)
    with killer.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    killer.dispose()


def test_an_idle_connection_that_died_is_replaced_before_use(database: str) -> None:
    engine = engine_for(database, idle_s=0.0)  # every checkout counts as after idling
    dead = backend_pid(engine)
    kill_backend(database, dead)
    assert backend_pid(engine) != dead  # the ping failed, the pool reconnected, the query ran
    engine.dispose()


def test_a_recently_used_connection_is_not_pinged(database: str) -> None:
    engine = engine_for(database, idle_s=3600.0)
    dead = backend_pid(engine)
    kill_backend(database, dead)
    with pytest.raises(OperationalError):  # no ping: the dead connection reached the statement
        backend_pid(engine)
    assert backend_pid(engine) != dead  # SQLAlchemy invalidated the pool: the next checkout reconnects
    engine.dispose()
