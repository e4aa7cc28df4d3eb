"""The sweep removes the checkpoints of jobs that ended without a supervisor to remove them (a lost
worker's last attempt, a cancel whose worker vanished, a cancel between attempts), and never those
a later attempt could still resume from. Real Postgres, real stores (a folder and SeaweedFS)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.jobs.leases import (
    Lease,
    claim,
    heartbeat,
    record_checkpoint,
    release_for_retry,
    request_cancel,
)
from persistence.models import Job, Tenant
from persistence.objects import LocalObjectStore, ObjectStore, ObjectStoreUnavailableError, object_key
from persistence.states import FailureReason, JobState
from service.postgres import fresh_database, run_alembic
from worker.reaper import JobSweep, sweep_jobs

LEASE = timedelta(seconds=60)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AFTER_LEASE = T0 + 2 * LEASE


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with fresh_database("batchcam_checkpoint_sweep") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE tenants, jobs, job_events CASCADE"))
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(params=["local_store", "s3_store"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)


def running_job_with_checkpoints(
    sessions: sessionmaker[Session], store: ObjectStore, max_attempts: int = 3
) -> tuple[Lease, list[str]]:
    """A job claimed at T0 whose attempt uploaded and recorded two checkpoints."""
    with transaction(sessions) as session:
        tenant = Tenant(name=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        job = Job(tenant_id=tenant.id, spec={}, max_attempts=max_attempts, created_at=T0, updated_at=T0)
        session.add(job)
        session.flush()
        tenant_id, job_id = tenant.id, job.id
    with transaction(sessions) as session:
        lease = claim(session, job_id, "worker-a", LEASE, T0)
    assert lease is not None
    keys = [object_key(str(tenant_id), "checkpoints", str(job_id), f"epoch{n}.pt") for n in (1, 2)]
    for step, key in enumerate(keys, start=1):
        store.put(key, b"optimiser state " * 64, content_type="application/octet-stream")
        with transaction(sessions) as session:
            assert record_checkpoint(session, lease, key, T0, epoch=step, step=step)
    return lease, keys


def sweep(sessions: sessionmaker[Session], store: ObjectStore, now: datetime) -> list[uuid.UUID]:
    return sweep_jobs(JobSweep(sessions, lambda _: None, store, requeue_stale_after=timedelta(hours=1)), now)


def load(sessions: sessionmaker[Session], job_id: uuid.UUID) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


def stored(store: ObjectStore, keys: list[str]) -> list[str]:
    return [key for key in keys if store.head(key) is not None]


def test_a_job_failed_by_the_sweep_loses_its_checkpoints(sessions, store) -> None:
    lease, keys = running_job_with_checkpoints(sessions, store, max_attempts=1)
    sweep(sessions, store, AFTER_LEASE)
    job = load(sessions, lease.job_id)
    assert (job.state, job.failure_reason) == (JobState.FAILED, FailureReason.WORKER_LOST)
    assert stored(store, keys) == [] and job.checkpoint_key is None
    assert job.updated_at == AFTER_LEASE  # the removal is housekeeping: the row's last change stays


def test_a_cancel_whose_worker_vanished_loses_its_checkpoints(sessions, store) -> None:
    lease, keys = running_job_with_checkpoints(sessions, store)
    with transaction(sessions) as session:
        request_cancel(session, session.get_one(Job, lease.job_id), T0)
    sweep(sessions, store, AFTER_LEASE)
    assert load(sessions, lease.job_id).state == JobState.CANCELLED
    assert stored(store, keys) == []


def test_a_job_cancelled_between_attempts_loses_its_checkpoints(sessions, store) -> None:
    lease, keys = running_job_with_checkpoints(sessions, store)
    with transaction(sessions) as session:
        assert release_for_retry(session, lease, T0, "the store timed out")
    sweep(sessions, store, T0)  # queued for its next attempt: it resumes from them
    assert stored(store, keys) == keys
    with transaction(sessions) as session:  # what the API does for a queued job
        request_cancel(session, session.get_one(Job, lease.job_id), T0)
    cancelled = load(sessions, lease.job_id)
    sweep(sessions, store, T0)
    assert stored(store, keys) == [] and load(sessions, lease.job_id).updated_at == cancelled.updated_at


def test_checkpoints_a_later_attempt_can_resume_from_are_kept(sessions, store) -> None:
    live, live_keys = running_job_with_checkpoints(sessions, store)
    lost, lost_keys = running_job_with_checkpoints(sessions, store)
    with transaction(sessions) as session:  # the live worker renews; the other one went silent
        assert heartbeat(session, live, LEASE, AFTER_LEASE - timedelta(seconds=1)).still_owner
    assert sweep(sessions, store, AFTER_LEASE) == [lost.job_id]
    assert load(sessions, lost.job_id).state == JobState.QUEUED
    assert load(sessions, lost.job_id).checkpoint_key == lost_keys[-1]
    assert stored(store, lost_keys + live_keys) == lost_keys + live_keys


def test_a_store_that_cannot_delete_leaves_the_job_for_the_next_sweep(sessions, local_store) -> None:
    lease, keys = running_job_with_checkpoints(sessions, local_store, max_attempts=1)

    class Undeletable(LocalObjectStore):
        def delete_prefix(self, prefix: str) -> int:
            raise ObjectStoreUnavailableError("test: the store is down")

    sweep(sessions, Undeletable(local_store.root), AFTER_LEASE)
    assert load(sessions, lease.job_id).state == JobState.FAILED  # the reap itself went through
    assert stored(local_store, keys) == keys and load(sessions, lease.job_id).checkpoint_key == keys[-1]
    sweep(sessions, local_store, AFTER_LEASE + LEASE)
    assert stored(local_store, keys) == [] and load(sessions, lease.job_id).checkpoint_key is None


def test_a_broker_that_refuses_one_message_does_not_stop_the_others(sessions, local_store) -> None:
    first, _ = running_job_with_checkpoints(sessions, local_store)
    second, _ = running_job_with_checkpoints(sessions, local_store)
    attempted: list[uuid.UUID] = []

    def refuse_the_first(job_id: uuid.UUID) -> None:
        attempted.append(job_id)
        if len(attempted) == 1:
            raise ConnectionError("test: the broker dropped the connection")

    target = JobSweep(sessions, refuse_the_first, local_store, requeue_stale_after=LEASE)
    sent = sweep_jobs(target, AFTER_LEASE)
    assert sorted(attempted) == sorted([first.job_id, second.job_id])
    assert sent == attempted[1:]  # what was sent, not what was meant to be
    refused = attempted[0]
    assert load(sessions, refused).state == JobState.QUEUED  # committed: a later sweep sends it again
    assert refused in sweep_jobs(target, AFTER_LEASE + 2 * LEASE)  # its resend is due by then
