"""HTTP → Postgres → Redis → a real Celery worker → the training child → back, including a worker
SIGKILLed mid-training whose job another worker resumes from the last recorded checkpoint; and the
metrics endpoint a worker starts when BATCHCAM_WORKER_METRICS_PORT is set."""

from __future__ import annotations

import io
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from batchcam.data import make_shapes
from persistence.api_keys import create_api_key
from persistence.db import transaction
from persistence.models import JobEvent, utcnow
from persistence.settings import Settings
from service.celery_worker import start_worker, wait_for
from service.postgres import fresh_database, run_alembic
from service.seaweed import free_port
from service.service_stack import claim_redis_database
from worker.broker_restart import MARKER_KEY, resend_queued_since
from worker.celery_app import make_celery
from worker.enqueue import training_enqueuer

pytestmark = pytest.mark.slow
REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings shared by the API (in this process) and the workers (subprocesses)."""
    state = tmp_path_factory.mktemp("e2e")
    database = claim_redis_database("e2e")  # a Redis database of its own (found empty), emptied after
    broker = redis.Redis.from_url(f"{REDIS}/{database}")
    with fresh_database("batchcam_e2e") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield {
            "DATABASE_URL": url,
            "BROKER_URL": f"{REDIS}/{database}",
            "OBJECT_STORE_URL": (state / "objects").as_uri(),
            "BATCHCAM_STATE_DIR": str(state),
            "BATCHCAM_LEASE_SECONDS": "3",
            "BATCHCAM_HEARTBEAT_SECONDS": "0.5",
            "BATCHCAM_REAPER_INTERVAL_SECONDS": "1",
            "BATCHCAM_CACHE_DIR": str(state / "cache"),
        }
    broker.flushdb()


@pytest.fixture(scope="module")
def api(environment: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(**environment)
    client = TestClient(create_app(settings, enqueue_training=training_enqueuer(make_celery(settings))))
    sessions = sessionmaker(create_engine(environment["DATABASE_URL"]))
    with transaction(sessions) as session:
        key = create_api_key(session, "e2e", "tests")
    yield client, {"Authorization": f"Bearer {key.secret}"}
    client.close()


def upload_small_dataset(client: TestClient, headers: dict[str, str]) -> str:
    data = make_shapes(600, seed=21)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        images=data.images[:, 0].numpy(),
        labels=data.labels.numpy(),
        class_names=np.array(data.class_names),
    )
    response = client.post(
        "/v1/datasets",
        headers=headers,
        files={"file": ("shapes.npz", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def job(client: TestClient, headers: dict[str, str], job_id: str) -> dict:
    response = client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_job_submitted_over_http_is_trained_by_a_celery_worker(api, environment, tmp_path: Path) -> None:
    client, headers = api
    dataset = upload_small_dataset(client, headers)
    worker = start_worker(environment, tmp_path / "worker.log", "e2e-a")
    try:
        submitted = client.post(
            "/v1/jobs", headers=headers, json={"dataset": dataset, "epochs": 2, "batch_size": 16}
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        wait_for(lambda: job(client, headers, job_id)["terminal"], 180, "the job to end", worker)
        final = job(client, headers, job_id)
        assert final["state"] == "succeeded", final
        assert final["attempt"] == 1
        metrics = client.get(f"/v1/jobs/{job_id}/metrics", headers=headers).json()
        assert [epoch["epoch"] for epoch in metrics["epochs"]] == [1, 2]
    finally:
        worker.stop()


def test_a_sigkilled_worker_s_job_resumes_on_another_worker(api, environment, tmp_path: Path) -> None:
    client, headers = api
    dataset = upload_small_dataset(client, headers)
    doomed = start_worker(environment, tmp_path / "doomed.log", "e2e-doomed")
    # 12 epochs (~360 steps): progress is reported about once a second, and a quiet machine runs ~60
    # steps/s, so with 4 epochs the doomed worker could finish before the kill landed.
    body = {"dataset": dataset, "epochs": 12, "batch_size": 16, "checkpoint_every_steps": 15}
    submitted = client.post("/v1/jobs", headers=headers, json=body)
    job_id = submitted.json()["id"]
    try:
        wait_for(
            lambda: (job(client, headers, job_id)["progress"].get("step") or 0) >= 40, 180, "progress", doomed
        )
    finally:
        doomed.kill()  # main process, pool child and training child, all at once
    sessions = sessionmaker(create_engine(environment["DATABASE_URL"]))
    with sessions() as session:
        checkpoints = session.scalars(
            select(JobEvent.data).where(JobEvent.job_id == uuid.UUID(job_id), JobEvent.type == "checkpoint")
        ).all()
    assert checkpoints, "the doomed worker recorded no checkpoint"
    last_step = max(c["step"] for c in checkpoints)
    total_steps = job(client, headers, job_id)["progress"]["total_steps"]
    assert last_step < total_steps, "the kill landed after training ended: nothing left to resume"

    rescuer = start_worker(environment, tmp_path / "rescuer.log", "e2e-rescuer", with_beat=True)
    try:
        wait_for(lambda: job(client, headers, job_id)["terminal"], 240, "the rescued job to end", rescuer)
    finally:
        rescuer.stop()
    final = job(client, headers, job_id)
    assert final["state"] == "succeeded" and final["attempt"] == 2, final
    with sessions() as session:
        events = session.scalars(
            select(JobEvent.data).where(JobEvent.job_id == uuid.UUID(job_id), JobEvent.type == "checkpoint")
        ).all()
    resumed = [c["step"] for c in events if "attempt2" in c["key"]]
    assert resumed and min(resumed) > last_step  # nothing before the last recorded checkpoint re-ran


def served_families(port: int) -> set[str] | None:
    """The metric families a worker serves on ``port``; None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {family.name for family in text_string_to_metric_families(text)}


def test_a_worker_serves_its_metrics_when_a_port_is_set(environment, tmp_path: Path) -> None:
    port = free_port()
    settings = {"BATCHCAM_WORKER_METRICS_PORT": str(port), "BATCHCAM_WORKER_METRICS_ADDRESS": "127.0.0.1"}
    worker = start_worker({**environment, **settings}, tmp_path / "worker.log", "e2e-metrics")
    try:
        wait_for(lambda: served_families(port) is not None, 120, "the worker's metrics endpoint", worker)
        families = served_families(port)
        assert families is not None
        assert {"batchcam_explain_duration_seconds", "batchcam_explain_run_seconds"} <= families
    finally:
        worker.stop()
    assert served_families(port) is None  # it went with the worker


def test_a_job_whose_message_the_broker_lost_starts_within_30_s(api, environment, tmp_path: Path) -> None:
    """Issue 16: a Redis restart without persistence loses every queued message. The rows stay queued
    (the table is the outbox), and the first sweep after the restart finds the broker's marker gone and
    sends them again, instead of waiting for the stale re-send (5 minutes here)."""
    client, headers = api
    dataset = upload_small_dataset(client, headers)
    broker = redis.Redis.from_url(environment["BROKER_URL"])
    resend_queued_since(environment["BROKER_URL"], utcnow(), timedelta(seconds=1))  # the marker exists
    body = {"dataset": dataset, "epochs": 1, "batch_size": 16}
    job_id = client.post("/v1/jobs", headers=headers, json=body).json()["id"]
    assert broker.llen("train") == 1  # its wake-up, waiting for a worker
    broker.delete("train", MARKER_KEY)  # the restart: the message and the marker are gone, the row stays
    worker = start_worker(environment, tmp_path / "worker.log", "e2e-restart", with_beat=True)
    try:
        started = time.monotonic()
        wait_for(
            lambda: job(client, headers, job_id)["state"] != "queued", 30, "the job to be claimed", worker
        )
        print(f"claimed {time.monotonic() - started:.1f} s after the worker started")
        wait_for(lambda: job(client, headers, job_id)["terminal"], 180, "the job to end", worker)
    finally:
        worker.stop()
    assert job(client, headers, job_id)["state"] == "succeeded"


def test_a_training_worker_answers_its_broker_while_it_trains(api, environment, tmp_path: Path) -> None:
    """Issue 16: with the solo pool the task blocked the worker's event loop for the whole run, so its
    heartbeats stopped and monitoring saw every busy training worker as offline. The task now runs in
    a thread of its own; the loop keeps answering (a remote-control ping stands in for heartbeats)."""
    client, headers = api
    dataset = upload_small_dataset(client, headers)
    worker = start_worker(environment, tmp_path / "worker.log", "e2e-ping")
    body = {"dataset": dataset, "epochs": 12, "batch_size": 16}
    job_id = client.post("/v1/jobs", headers=headers, json=body).json()["id"]
    try:
        wait_for(
            lambda: (job(client, headers, job_id)["progress"].get("step") or 0) >= 5, 180, "progress", worker
        )
        replies = make_celery(Settings(**environment)).control.ping(timeout=3.0)
        assert not job(client, headers, job_id)["terminal"], (
            "the job ended before the ping: nothing was shown"
        )
        assert any(name.startswith("e2e-ping@") for reply in replies for name in reply), replies
        client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)
        wait_for(lambda: job(client, headers, job_id)["terminal"], 60, "the cancel", worker)
    finally:
        worker.stop()


def test_a_job_waiting_behind_a_busy_worker_goes_to_an_idle_one(api, environment, tmp_path: Path) -> None:
    """A worker acknowledges a message when its task starts, which frees its prefetch slot: without
    worker_disable_prefetch the busy worker takes the next message too and holds it for its whole
    run, while the other worker idles (seen in benchmarks/recovery.py: a 48 s wait)."""
    client, headers = api
    dataset = upload_small_dataset(client, headers)
    workers = [start_worker(environment, tmp_path / f"w{n}.log", f"e2e-pair{n}") for n in range(2)]
    try:
        long = client.post(
            "/v1/jobs", headers=headers, json={"dataset": dataset, "epochs": 12, "batch_size": 16}
        ).json()["id"]
        wait_for(lambda: (job(client, headers, long)["progress"].get("step") or 0) >= 5, 180, "training")
        waiting = client.post(
            "/v1/jobs", headers=headers, json={"dataset": dataset, "epochs": 1, "batch_size": 16}
        ).json()["id"]
        wait_for(lambda: job(client, headers, waiting)["state"] != "queued", 15, "the idle worker's claim")
        assert not job(client, headers, long)["terminal"]  # it was taken while the other was busy
        for each in (long, waiting):
            client.post(f"/v1/jobs/{each}/cancel", headers=headers)
        wait_for(
            lambda: all(job(client, headers, each)["terminal"] for each in (long, waiting)), 60, "cancels"
        )
    finally:
        for worker in workers:
            worker.stop()
