"""Liveness and readiness probes (no API key needed).

``/healthz`` only says the process answers (from the event loop: it never queues for a thread).
``/readyz`` says whether this instance can serve: the database answers ``SELECT 1``, the object
store answers ``ping()``, the broker answers its check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.context import ApiContext, Context
from api.http.errors import ProblemError
from api.http.openapi import problem_responses

logger = logging.getLogger(__name__)

CheckResult = Literal["ok", "failed", "unchecked"]


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult] = Field(
        description="Each dependency: database, object_store, broker ('unchecked': no check configured)."
    )


router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up", response_model=Liveness)
async def healthz() -> Liveness:
    """On the event loop, never in the threadpool: while the database hangs, every worker thread may
    be waiting on it, and a liveness probe must not wait behind them (and restart a healthy API)."""
    return Liveness()


@router.get(
    "/readyz",
    summary="Readiness: database, object store and broker are reachable",
    response_model=Readiness,
    responses=problem_responses(503),
)
def readyz(context: Context) -> Readiness:
    checks = {name: run_check(name, check) for name, check in dependency_checks(context).items()}
    failed = sorted(name for name, result in checks.items() if result == "failed")
    if failed:
        raise ProblemError(503, "not_ready", f"not ready: {', '.join(failed)} unavailable", checks=checks)
    return Readiness(checks=checks)


def dependency_checks(context: ApiContext) -> dict[str, Callable[[], None] | None]:
    return {
        "database": lambda: check_database(context),
        "object_store": context.object_store.ping,
        "broker": context.check_broker,
    }


def check_database(context: ApiContext) -> None:
    with context.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def run_check(name: str, check: Callable[[], None] | None) -> CheckResult:
    if check is None:
        return "unchecked"
    try:
        check()
    except Exception as error:  # any failure means not ready; the type name is logged, never secrets
        logger.warning("readiness check %s failed: %s", name, type(error).__name__)
        return "failed"
    return "ok"
