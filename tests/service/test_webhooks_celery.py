"""The webhook sender as operators run it: a real Celery worker on Redis, woken after the commit that
wrote a delivery, and a worker SIGKILLed in the middle of a send whose delivery another worker's
sweep sends again, with the same webhook-id, once the lease has run out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from persistence.settings import Settings
from persistence.states import JobState
from persistence.webhooks.wakeup import wake_sender_after_commit
from service.celery_worker import start_worker, wait_for
from service.explanation_rows import insert_tenant
from service.postgres import fresh_database, run_alembic
from service.service_stack import claim_redis_database
from service.webhook_receiver import webhook_receiver
from service.webhook_support import add_endpoint, deliveries, run_job
from worker.celery_app import make_celery
from worker.enqueue import webhook_enqueuer

pytestmark = pytest.mark.slow
REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("webhooks")
    database = claim_redis_database("webhooks-celery")
    broker = redis.Redis.from_url(f"{REDIS}/{database}")
    with fresh_database("batchcam_webhooks_celery") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield {
            "DATABASE_URL": url,
            "BROKER_URL": f"{REDIS}/{database}",
            "OBJECT_STORE_URL": (state / "objects").as_uri(),
            "BATCHCAM_STATE_DIR": str(state),
            "BATCHCAM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "BATCHCAM_WEBHOOK_ALLOW_HTTP": "true",
            "BATCHCAM_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "0.5",
            "BATCHCAM_WEBHOOK_READ_TIMEOUT_SECONDS": "1",  # a lease of 10 s (worker.webhooks.sender)
            "BATCHCAM_WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.5,0.5,0.5",
            "BATCHCAM_WEBHOOK_SWEEP_INTERVAL_SECONDS": "1",
            "BATCHCAM_REAPER_INTERVAL_SECONDS": "60",
        }
    broker.flushdb()


@pytest.fixture(scope="module")
def sessions(environment: dict[str, str]) -> Iterator[sessionmaker[Session]]:
    """This process writes changes as a worker would, and wakes the sender as a worker does."""
    engine = create_engine(environment["DATABASE_URL"])
    factory = sessionmaker(engine, expire_on_commit=False)
    wake_sender_after_commit(factory, webhook_enqueuer(make_celery(Settings(**environment))))
    yield factory
    engine.dispose()


def test_a_delivery_goes_out_right_after_the_commit_and_a_killed_sender_loses_nothing(
    environment: dict[str, str], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        endpoint, _ = add_endpoint(sessions, tenant, receiver.url, ["job.succeeded", "job.cancelled"])
        worker = start_worker(environment, tmp_path / "first.log", "hooks1", queues="maintenance")
        try:
            run_job(sessions, tenant, JobState.CANCELLED, epochs=0)  # the first wake-up starts it
            wait_for(lambda: len(receiver.requests) == 1, 60, "the first delivery", worker)
            committed = time.monotonic()
            run_job(sessions, tenant, JobState.SUCCEEDED, epochs=0)
            wait_for(lambda: len(receiver.requests) == 2, 10, "the second delivery", worker)
            latency = time.monotonic() - committed
            print(f"commit → receiver, warm worker: {latency * 1000:.0f} ms")
            assert latency < 3.0  # the wake-up, not the 1 s sweep (no beat runs here)

            receiver.delay_s = 30.0  # the next receiver hangs: the worker dies while it waits
            run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
            wait_for(lambda: len(receiver.requests) == 3, 10, "the hanging delivery", worker)
        finally:
            worker.kill()
        hung = receiver.requests[2].headers["webhook-id"]
        (delivery,) = [d for d in deliveries(sessions, endpoint) if d.message_id == hung]
        assert delivery.status == "delivering"
        receiver.delay_s = 0.0
        log = tmp_path / "second.log"
        second = start_worker(environment, log, "hooks2", queues="maintenance", with_beat=True)
        try:
            wait_for(lambda: len(receiver.requests) == 4, 60, "the delivery sent again", second)
        finally:
            second.stop()
    assert receiver.requests[3].headers["webhook-id"] == hung
    (delivery,) = [d for d in deliveries(sessions, endpoint) if d.message_id == hung]
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
