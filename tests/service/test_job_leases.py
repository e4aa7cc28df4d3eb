"""Job delivery through rows, against a real Postgres: claims, leases, cancel, reaper."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.jobs.leases import (
    Lease,
    claim,
    finish,
    heartbeat,
    reap_expired_leases,
    record_checkpoint,
    record_epoch,
    release_for_retry,
    request_cancel,
    stale_queued_jobs,
)
from persistence.models import Job, JobEvent, Tenant
from persistence.states import FailureReason, JobState
from service.postgres import fresh_database, run_alembic

LEASE = timedelta(seconds=60)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with fresh_database("batchcam_leases") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE tenants, jobs, job_events CASCADE"))
    return sessionmaker(engine, expire_on_commit=False)


def new_job(sessions: sessionmaker[Session], max_attempts: int = 3) -> uuid.UUID:
    with transaction(sessions) as session:
        tenant = Tenant(name=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        job = Job(
            tenant_id=tenant.id, spec={"epochs": 1}, max_attempts=max_attempts, created_at=T0, updated_at=T0
        )
        session.add(job)
        session.flush()
        return job.id


def load(sessions: sessionmaker[Session], job_id: uuid.UUID) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


def test_a_duplicate_delivery_finds_the_lease_held(sessions) -> None:
    job_id = new_job(sessions)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "worker-a", LEASE, T0)
    with transaction(sessions) as session:
        assert claim(session, job_id, "worker-b", LEASE, T0) is None
    assert lease is not None and lease.attempt == 1 and lease.expires_at == T0 + LEASE
    job = load(sessions, job_id)
    assert (job.state, job.lease_owner, job.attempt) == (JobState.RUNNING, "worker-a", 1)


def test_concurrent_claims_have_exactly_one_winner(sessions) -> None:
    job_id = new_job(sessions)
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def contend(owner: str) -> None:
        barrier.wait()
        with transaction(sessions) as session:
            if claim(session, job_id, owner, LEASE, T0) is not None:
                winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and load(sessions, job_id).lease_owner == winners[0]


def test_heartbeat_extends_and_reports_cancellation(sessions) -> None:
    job_id = new_job(sessions)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "w", LEASE, T0)
    assert lease is not None
    with transaction(sessions) as session:
        answer = heartbeat(session, lease, LEASE, T0 + timedelta(seconds=30), {"step": 5})
    assert answer.still_owner and not answer.cancel_requested
    job = load(sessions, job_id)
    assert job.lease_expires_at == T0 + timedelta(seconds=90) and job.progress == {"step": 5}

    with transaction(sessions) as session:
        request_cancel(session, load(sessions, job_id), T0 + timedelta(seconds=31))
    assert load(sessions, job_id).state == JobState.CANCELLING  # not cancelled until the worker stops
    with transaction(sessions) as session:
        answer = heartbeat(session, lease, LEASE, T0 + timedelta(seconds=32))
    assert answer.still_owner and answer.cancel_requested
    assert load(sessions, job_id).state == JobState.CANCELLING
    with transaction(sessions) as session:
        assert finish(session, lease, JobState.CANCELLED, T0 + timedelta(seconds=33))
    job = load(sessions, job_id)
    assert job.state == JobState.CANCELLED and job.lease_owner is None and job.finished_at is not None


def test_cancelling_a_queued_job_is_immediate_and_idempotent(sessions) -> None:
    job_id = new_job(sessions)
    for _ in range(2):
        with transaction(sessions) as session:
            request_cancel(session, load(sessions, job_id), T0)
    assert load(sessions, job_id).state == JobState.CANCELLED
    with transaction(sessions) as session:
        assert claim(session, job_id, "late-worker", LEASE, T0) is None  # a cancelled job never runs
        events = session.scalars(select(JobEvent.data).where(JobEvent.job_id == job_id)).all()
    assert [e["state"] for e in events] == ["cancelled"]


def test_reaper_requeues_then_fails_with_worker_lost(sessions) -> None:
    job_id = new_job(sessions, max_attempts=2)
    now = T0
    for attempt in (1, 2):
        with transaction(sessions) as session:
            lease = claim(session, job_id, f"w{attempt}", LEASE, now)
        assert lease is not None and lease.attempt == attempt
        with transaction(sessions) as session:  # not yet expired: untouched
            assert reap_expired_leases(session, now + LEASE - timedelta(seconds=1)).requeued == []
        now = now + LEASE + timedelta(seconds=1)
        with transaction(sessions) as session:
            result = reap_expired_leases(session, now)
        if attempt == 1:
            assert result.requeued == [job_id] and load(sessions, job_id).state == JobState.QUEUED
            assert load(sessions, job_id).phase is None
            with transaction(sessions) as session:  # the lost worker wakes up: nothing is its anymore
                assert not heartbeat(session, lease, LEASE, now).still_owner
                assert not finish(session, lease, JobState.SUCCEEDED, now)
                assert not record_checkpoint(session, lease, "k", now, epoch=1)
        else:
            assert result.failed == [job_id]
    job = load(sessions, job_id)
    assert job.state == JobState.FAILED and job.failure_reason == FailureReason.WORKER_LOST


def test_reaper_confirms_a_cancel_whose_worker_died(sessions) -> None:
    job_id = new_job(sessions)
    with transaction(sessions) as session:
        claim(session, job_id, "w", LEASE, T0)
    with transaction(sessions) as session:
        request_cancel(session, load(sessions, job_id), T0)
    with transaction(sessions) as session:
        result = reap_expired_leases(session, T0 + 2 * LEASE)
    assert result.cancelled == [job_id] and load(sessions, job_id).state == JobState.CANCELLED


def test_checkpoints_and_transient_release(sessions) -> None:
    job_id = new_job(sessions)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "w", LEASE, T0)
    assert lease is not None
    with transaction(sessions) as session:
        assert record_checkpoint(session, lease, "tenants/x/checkpoints/j/1-10.pt", T0, epoch=0, step=10)
        assert heartbeat(session, lease, LEASE, T0, {"phase": "train", "step": 10}).still_owner
    with transaction(sessions) as session:
        assert release_for_retry(session, lease, T0, "object store unreachable")
    job = load(sessions, job_id)
    assert job.state == JobState.QUEUED and job.checkpoint_key == "tenants/x/checkpoints/j/1-10.pt"
    assert job.phase is None  # waiting again, not training
    assert job.progress == {"phase": "train", "step": 10}  # how far the attempt got, while queued
    with transaction(sessions) as session:
        second = claim(session, job_id, "w2", LEASE, T0)
    assert second is not None and second.attempt == 2  # resumes from the recorded checkpoint
    assert load(sessions, job_id).progress == {}  # progress is the running attempt's, reported anew


def test_a_record_written_again_after_an_unanswered_commit_is_recorded_once(sessions) -> None:
    job_id = new_job(sessions)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "w", LEASE, T0)
    assert lease is not None
    for _ in range(2):  # the first commit went through, but its answer was lost: the worker retries
        with transaction(sessions) as session:
            assert record_checkpoint(session, lease, "tenants/x/checkpoints/j/1-10.pt", T0, epoch=0, step=10)
            assert record_epoch(session, lease, 1, {"epoch": 1, "test_accuracy": 0.5}, T0)
    with transaction(sessions) as session:
        events = session.scalars(select(JobEvent.type).where(JobEvent.job_id == job_id)).all()
        impostor = Lease(job_id, "other-worker", lease.attempt, T0)  # the shortcut never skips ownership
        assert not record_checkpoint(
            session, impostor, "tenants/x/checkpoints/j/1-10.pt", T0, epoch=0, step=10
        )
    assert sorted(events) == ["checkpoint", "epoch", "state"]


def test_a_waiting_job_is_sent_again_at_doubling_intervals_up_to_a_cap(sessions) -> None:
    job, period = new_job(sessions), timedelta(minutes=5)

    def sent_at(minutes: float) -> bool:
        with transaction(sessions) as session:
            return stale_queued_jobs(session, T0 + timedelta(minutes=minutes), period) == [job]

    # A lost first message costs one period; then 2, 4, 8 … periods apart, never more than 6.
    sends = [m for m in range(0, 240) if sent_at(m)]
    assert sends == [5, 10, 20, 40, 70, 100, 130, 160, 190, 220]
    claimed = T0 + timedelta(minutes=300)
    with transaction(sessions) as session:
        assert claim(session, job, "w", LEASE, claimed) is not None
    with transaction(sessions) as session:  # claimed: never sent again
        assert stale_queued_jobs(session, claimed + timedelta(hours=5), period) == []
