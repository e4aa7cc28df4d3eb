"""The engine's connect breaker against a blackholed database: a listening socket that never answers
(the kernel completes the TCP handshake, Postgres never speaks), which is what a dropped route looks
like. The first connect waits out its timeout; while the breaker is open the others fail at once; a
probe after the cooldown tries again (docs/ARCHITECTURE.md §8, issue 16)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from persistence.connect_breaker import DEFAULT_COOLDOWN_S
from persistence.db import CONNECT_TIMEOUT_SECONDS, make_engine

pytestmark = pytest.mark.slow  # two connect timeouts (5 s each)


@pytest.fixture
def blackholed() -> Iterator[Engine]:
    with socket.create_server(("127.0.0.1", 0), backlog=128) as silent:  # never accepts, never answers
        engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/none")
        yield engine
        engine.dispose()


def timed_query(engine: Engine) -> float:
    started = time.monotonic()
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return time.monotonic() - started


def test_an_unreachable_database_fails_one_connect_slowly_and_the_next_ones_at_once(blackholed) -> None:
    assert timed_query(blackholed) >= CONNECT_TIMEOUT_SECONDS - 0.5  # nothing known yet: it waits
    quick = [timed_query(blackholed) for _ in range(20)]
    assert max(quick) < 0.1  # the breaker is open: 503 in milliseconds, not another 5 s each
    time.sleep(DEFAULT_COOLDOWN_S)
    assert timed_query(blackholed) >= CONNECT_TIMEOUT_SECONDS - 0.5  # the probe tries for real
    assert timed_query(blackholed) < 0.1
