"""The sweep on the embedded SQLite, which cannot lock the rows it reads: a worker's end committed
between the sweep's read and its write must stand, for jobs and for explanations.

The race is staged, not hoped for: a hook on the sweep's engine commits the worker's end from a
second connection just before the sweep's first UPDATE reaches SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select

from persistence.db import make_engine, make_session_factory, transaction
from persistence.explanations.leases import claim_explanation, finish_explanation
from persistence.explanations.sweep import reap_expired_explanations
from persistence.jobs.leases import claim, finish, reap_expired_leases
from persistence.models import Explanation, Job, JobEvent
from persistence.states import JobState
from service.explanation_rows import insert_explanation, insert_model, insert_tenant
from service.postgres import run_alembic

LEASE = timedelta(seconds=60)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AFTER_LEASE = T0 + 2 * LEASE


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """The sweep's engine and a worker's, on one embedded database file."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    run_alembic(url, upgrade=True, revision="head")
    sweeper, worker = make_engine(url), make_engine(url)
    yield sweeper, worker
    sweeper.dispose()
    worker.dispose()


def before_first_update_of(engine: Engine, table: str, act: Callable[[], None]) -> list[str]:
    """Runs ``act`` once, just before ``engine`` sends its first UPDATE of ``table``; returns the
    statements it fired before (empty: the race was never staged)."""
    fired: list[str] = []

    def hook(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not fired and statement.lstrip().upper().startswith(f"UPDATE {table.upper()} "):
            fired.append(statement)
            act()

    event.listen(engine, "before_cursor_execute", hook)
    return fired


def test_a_job_finished_while_the_sweep_looked_stays_finished(engines) -> None:
    sweeper, worker = engines
    worker_sessions = make_session_factory(worker)
    tenant_id = insert_tenant(worker_sessions)
    with transaction(worker_sessions) as session:
        job = Job(tenant_id=tenant_id, spec={}, max_attempts=3, created_at=T0, updated_at=T0)
        session.add(job)
        session.flush()
        job_id = job.id
    with transaction(worker_sessions) as session:
        lease = claim(session, job_id, "slow-worker", LEASE, T0)
    assert lease is not None
    model_id = uuid.uuid4()

    def worker_finishes() -> None:  # late, but before the sweep wrote anything
        with transaction(worker_sessions) as session:
            assert finish(session, lease, JobState.SUCCEEDED, AFTER_LEASE, model_id=model_id)

    fired = before_first_update_of(sweeper, "jobs", worker_finishes)
    with transaction(make_session_factory(sweeper)) as session:
        reaped = reap_expired_leases(session, AFTER_LEASE)
    assert fired, "the sweep never tried to write: the race was not staged"
    assert reaped.requeued == reaped.failed == reaped.cancelled == []
    with worker_sessions() as session:
        job = session.get_one(Job, job_id)
        assert (job.state, job.model_id, job.lease_owner) == (JobState.SUCCEEDED, model_id, None)
        events = session.scalars(select(JobEvent.data).where(JobEvent.job_id == job_id)).all()
    assert not any("reaped_from" in data for data in events)


def test_an_explanation_finished_while_the_sweep_looked_stays_finished(engines) -> None:
    sweeper, worker = engines
    worker_sessions = make_session_factory(worker)
    tenant_id = insert_tenant(worker_sessions)
    explanation_id = insert_explanation(
        worker_sessions, tenant_id, insert_model(worker_sessions, tenant_id), created_at=T0, updated_at=T0
    )
    with transaction(worker_sessions) as session:
        held = claim_explanation(session, explanation_id, "slow-worker", LEASE, T0)
    assert held is not None
    results = [{"index": 0, "heatmap": "a"}, {"index": 1, "heatmap": "b"}]

    def worker_finishes() -> None:
        with transaction(worker_sessions) as session:
            assert finish_explanation(session, held, results, AFTER_LEASE)

    fired = before_first_update_of(sweeper, "explanations", worker_finishes)
    with transaction(make_session_factory(sweeper)) as session:
        reaped = reap_expired_explanations(session, AFTER_LEASE, max_attempts=3)
    assert fired, "the sweep never tried to write: the race was not staged"
    assert reaped.requeued == reaped.failed == reaped.cancelled == []
    with worker_sessions() as session:
        explanation = session.get_one(Explanation, explanation_id)
        assert (explanation.state, explanation.results) == (JobState.SUCCEEDED, results)
