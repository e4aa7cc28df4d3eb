"""Failing fast while the database is unreachable: a circuit breaker on new connections.

Without it, every request that needs a new connection during an outage waits out the whole connect
timeout (5 s), and a burst of requests queues behind the pool: an outside test saw p50 15 s and max
50 s for 150 concurrent requests against a blackholed database, all of them ending in 503 anyway.

With it, a failed connect opens the breaker: for ``cooldown_s`` every new connect fails at once
(the API answers 503 ``database_unavailable`` in milliseconds). After that, one connect is let
through as a probe while the others keep failing at once; its success closes the breaker, its
failure opens it again. Recovery therefore takes at most one cooldown after the database is back.
Connections already in the pool are not affected (a dead one fails its ping after idling, and its
replacement is a connect: ``persistence.idle_ping``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

DEFAULT_COOLDOWN_S = 1.0


class DatabaseUnreachableError(psycopg.OperationalError):
    """Raised instead of connecting while the breaker is open (SQLAlchemy wraps it as any DBAPI
    error: callers see the ``OperationalError`` a failed connect raises)."""


class ConnectBreaker:
    def __init__(self, probe_timeout_s: float, cooldown_s: float = DEFAULT_COOLDOWN_S) -> None:
        self._probe_timeout_s = probe_timeout_s  # how long a probe may take before another may try
        self._cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._failing = False
        self._closed_to_all_until = 0.0  # monotonic time

    def connect(self, open_connection: Callable[[], Any]) -> Any:
        """``open_connection()``, unless the breaker is open."""
        self._admit()
        try:
            connection = open_connection()
        except Exception:
            self._failed()
            raise
        self._succeeded()
        return connection

    def _admit(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._closed_to_all_until:
                raise DatabaseUnreachableError("the database was unreachable moments ago (circuit open)")
            if self._failing:  # this connect is the probe: the others fail at once until it answers
                self._closed_to_all_until = now + self._probe_timeout_s

    def _failed(self) -> None:
        with self._lock:
            self._failing = True
            self._closed_to_all_until = time.monotonic() + self._cooldown_s

    def _succeeded(self) -> None:
        with self._lock:
            self._failing = False
            self._closed_to_all_until = 0.0
