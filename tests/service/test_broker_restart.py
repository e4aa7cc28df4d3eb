"""The sweep's marker in the broker (a real Redis): present and one interval old in normal operation
(nothing extra sent); gone after a restart that lost the broker's data (everything queued is sent);
old after an outage (what was queued since the last sweep is sent); and no answer from a broker it
cannot ask. Then the sweep (on Postgres) sends exactly the queued rows the marker asks for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session, sessionmaker

from persistence.api_keys import get_or_create_tenant
from persistence.db import transaction
from persistence.models import Job, utcnow
from persistence.objects import LocalObjectStore
from persistence.states import JobState
from service.api_support import insert_job
from service.postgres import fresh_database, run_alembic
from service.service_stack import claim_redis_database
from worker.broker_restart import EVERYTHING, MARKER_KEY, resend_queued_since
from worker.reaper import JobSweep, sweep_jobs

REDIS = "redis://127.0.0.1:6379"
INTERVAL = timedelta(seconds=30)


@pytest.fixture
def broker_url() -> Iterator[str]:
    url = f"{REDIS}/{claim_redis_database('broker-restart')}"
    client = redis.Redis.from_url(url)
    client.delete(MARKER_KEY)
    yield url
    client.delete(MARKER_KEY)
    client.close()


def test_a_broker_that_lost_its_data_gets_every_queued_row_again_once(broker_url: str) -> None:
    now = utcnow()
    assert resend_queued_since(broker_url, now, INTERVAL) == EVERYTHING  # a new broker
    assert resend_queued_since(broker_url, now + INTERVAL, INTERVAL) is None
    assert resend_queued_since(broker_url, now + 2 * INTERVAL, INTERVAL) is None
    redis.Redis.from_url(broker_url).delete(MARKER_KEY)  # what a restart without persistence leaves
    assert resend_queued_since(broker_url, now + 3 * INTERVAL, INTERVAL) == EVERYTHING
    assert resend_queued_since(broker_url, now + 4 * INTERVAL, INTERVAL) is None


def test_after_an_outage_the_rows_queued_since_the_last_sweep_are_sent(broker_url: str) -> None:
    now = utcnow()
    resend_queued_since(broker_url, now, INTERVAL)
    assert resend_queued_since(broker_url, now + 2 * INTERVAL, INTERVAL) is None  # one sweep late: fine
    back = now + 10 * INTERVAL  # beat could not reach the broker for eight intervals
    assert resend_queued_since(broker_url, back, INTERVAL) == now + INTERVAL
    assert resend_queued_since(broker_url, back + INTERVAL, INTERVAL) is None


def test_brokers_it_cannot_ask_never_trigger_a_resend() -> None:
    assert resend_queued_since("filesystem://", utcnow(), INTERVAL) is None
    assert resend_queued_since("redis://127.0.0.1:1/0", utcnow(), INTERVAL) is None  # nothing listens


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with fresh_database("batchcam_broker_restart") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        yield sessionmaker(engine)
        engine.dispose()


def test_the_sweep_sends_the_queued_rows_the_marker_asks_for_and_no_others(
    sessions: sessionmaker[Session], tmp_path
) -> None:
    now = utcnow()
    with transaction(sessions) as session:
        tenant_id = get_or_create_tenant(session, "broker-restart").id
    touched = {"old": now - timedelta(hours=1), "recent": now - timedelta(seconds=40)}
    jobs = {name: insert_job(sessions, tenant_id, state=JobState.QUEUED) for name in touched}
    running = insert_job(sessions, tenant_id, state=JobState.RUNNING)
    with transaction(sessions) as session:
        for name, at in touched.items():
            session.execute(update(Job).where(Job.id == jobs[name]).values(created_at=at, updated_at=at))

    def sweep(since):
        sent: list = []
        stale_after = timedelta(hours=2)  # the stale re-send alone would send nothing yet
        sweep_jobs(JobSweep(sessions, sent.append, LocalObjectStore(tmp_path), stale_after, since), now)
        return set(sent)

    assert sweep(None) == set()
    assert sweep(now - timedelta(minutes=1)) == {jobs["recent"]}
    assert sweep(EVERYTHING) == {jobs["old"], jobs["recent"]}  # both were touched by the last sweep
    assert running not in sweep(EVERYTHING)
