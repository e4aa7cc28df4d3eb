"""Engines and sessions for the service database (Postgres in production, SQLite embedded)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from persistence.connect_breaker import ConnectBreaker
from persistence.idle_ping import ping_after_idle

CONNECT_TIMEOUT_SECONDS = 5
TCP_USER_TIMEOUT_MS = 10_000
# As many pooled connections as the API's threadpool runs blocking calls at once (anyio's default
# limiter: 40): a smaller pool makes every busy moment open and close "overflow" connections, which
# cost more than the queries they serve.
POOL_SIZE = 40
MAX_OVERFLOW = 10


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A bounded connect: an unreachable host fails a request (or /readyz) in seconds, not minutes.
    # tcp_user_timeout (ms) bounds a query on a connection whose peer went silent (a blackholed
    # network), which otherwise waits for TCP's retransmissions to give up: about 15 minutes.
    engine = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "tcp_user_timeout": TCP_USER_TIMEOUT_MS},
    )
    ping_after_idle(engine)  # not pool_pre_ping, which adds a round trip to every checkout
    breaker = ConnectBreaker(probe_timeout_s=CONNECT_TIMEOUT_SECONDS + 1)

    @event.listens_for(engine, "do_connect")
    def _connect_unless_open(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return breaker.connect(lambda: dialect.connect(*cargs, **cparams))

    return engine


def _sqlite_pragmas(connection: object, _record: object) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session
