"""The whole service as operators run it, for end-to-end tests: a fresh migrated Postgres database, a
Redis database, a SeaweedFS bucket, one Celery worker on every queue with the reaper's beat, and
``python -m api.serve``.

Other test runs on the machine use Redis databases too (picked at random and emptied): the stack
claims one that is empty, and its reaper re-sends the wake-up of a row whose message was lost anyway
(emptied or taken by a stranger's worker), as it does in production, so a stack shared by a whole
session does not hang on a lost message.

Used by tests/service/test_generated_client.py and the Python client's tests (tests/client).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from batchcam.data import make_shapes
from persistence.api_keys import create_api_key
from persistence.db import transaction
from persistence.objects import S3ObjectStore, ensure_bucket
from service.celery_worker import WorkerProcess, start_worker
from service.postgres import fresh_database, run_alembic
from service.seaweed import SeaweedServer
from service.served_api import ServedApi, served_api

REDIS = "redis://127.0.0.1:6379"
CLAIM_KEY = "batchcam-test-stack"
# The reaper every 2 s, re-sending a queued row's message once it has waited 5 s unclaimed.
REAPER = {"BATCHCAM_REAPER_INTERVAL_SECONDS": "2", "BATCHCAM_REQUEUE_STALE_AFTER_SECONDS": "5"}


@dataclass(frozen=True)
class ServiceStack:
    environment: dict[str, str]
    api: ServedApi
    worker: WorkerProcess

    def new_api_key(self, tenant: str) -> str:
        """A key of a new tenant (or a new key of an existing one), as ``batchcam keys create`` makes."""
        engine = create_engine(self.environment["DATABASE_URL"])
        try:
            with transaction(sessionmaker(engine)) as session:
                return create_api_key(session, tenant, "tests").secret
        finally:
            engine.dispose()


@contextmanager
def stack_environment(state: Path, seaweedfs: SeaweedServer, name: str) -> Iterator[dict[str, str]]:
    """The variables that point the API and the workers at fresh infrastructure, removed afterwards."""
    database = claim_redis_database(name)
    broker = redis.Redis.from_url(f"{REDIS}/{database}")
    bucket = f"{name.replace('_', '-')}-{random.getrandbits(48):012x}"
    ensure_bucket(S3ObjectStore(bucket, connection=seaweedfs.connection()))
    try:
        with fresh_database(f"batchcam_{name}") as url:
            run_alembic(url, upgrade=True, revision="head")
            yield {
                "DATABASE_URL": url,
                "BROKER_URL": f"{REDIS}/{database}",
                "OBJECT_STORE_URL": f"s3://{bucket}",
                "S3_ENDPOINT_URL": seaweedfs.endpoint_url,
                "S3_ACCESS_KEY_ID": seaweedfs.access_key_id,
                "S3_SECRET_ACCESS_KEY": seaweedfs.secret_access_key,
                "BATCHCAM_STATE_DIR": str(state),
                "BATCHCAM_CACHE_DIR": str(state / "cache"),
            }
    finally:
        broker.flushdb()


def claim_redis_database(owner: str) -> int:
    """An empty Redis database (a running worker's leaves keys), marked as taken; any one if none is."""
    numbers = random.sample(range(1, 16), 15)
    for number in numbers:
        client = redis.Redis.from_url(f"{REDIS}/{number}")
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, owner, nx=True, ex=3600):
                return number
        finally:
            client.close()
    return numbers[0]


@contextmanager
def service_stack(
    folder: Path, seaweedfs: SeaweedServer, name: str, extra_env: dict[str, str] | None = None
) -> Iterator[ServiceStack]:
    """Everything under ``folder`` (state, logs); one worker on train, explain and maintenance, with
    the reaper's beat."""
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    with stack_environment(folder / "state", seaweedfs, name) as environment:
        environment |= REAPER | (extra_env or {})
        log = folder / "logs" / "worker.log"
        worker = start_worker(environment, log, name, queues="train,explain,maintenance", with_beat=True)
        try:
            with served_api(environment, folder / "logs" / "api.log") as served:
                yield ServiceStack(environment, served, worker)
        finally:
            worker.stop()


def small_dataset(images: int = 300, seed: int = 5) -> bytes:
    """A ``.npz`` upload of procedural shapes: enough for a one-epoch job of a few seconds."""
    data = make_shapes(images, seed=seed)
    buffer = io.BytesIO()
    np.savez(buffer, images=data.images[:, 0].numpy(), labels=data.labels.numpy())
    return buffer.getvalue()
