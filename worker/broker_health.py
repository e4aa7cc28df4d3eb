"""Is the broker reachable? The API's ``/readyz`` asks this (the API never imports Celery itself)."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

BROKER_CHECK_TIMEOUT_SECONDS = 2.0


def broker_check(app: Celery, timeout: float = BROKER_CHECK_TIMEOUT_SECONDS) -> Callable[[], None]:
    """A check that raises when the broker cannot be reached within about ``timeout`` seconds."""

    def check() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)

    return check
