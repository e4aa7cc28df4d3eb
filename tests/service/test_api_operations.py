"""Operations endpoints (no key needed): liveness, readiness with the failing part named, and
Prometheus metrics on the app's own registry (request latency; jobs and explanations by state, each
queue's depth and oldest waiting row, counted from the rows at scrape time)."""

from __future__ import annotations

import logging
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from api.ops.metrics import WorkCollector
from persistence.connect_breaker import DEFAULT_COOLDOWN_S
from persistence.settings import Settings
from persistence.states import JobState
from service.api_support import ApiHarness, api_harness, assert_problem, insert_job
from service.explanation_rows import insert_explanation, insert_model
from worker.broker_health import broker_check
from worker.celery_app import make_celery


class Broker:
    """An injected broker check that can be made to fail."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> None:
        if not self.up:
            raise ConnectionError("redis://:hunter2@broker:6379 refused")


@pytest.fixture(scope="module")
def broker() -> Broker:
    return Broker()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, broker: Broker) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-ops"), check_broker=broker) as harness:
        yield harness


def test_healthz_answers_without_a_key(api: ApiHarness) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_object_store_and_broker(api: ApiHarness, broker: Broker) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "object_store": "ok", "broker": "ok"},
    }

    broker.up = False
    try:
        body = assert_problem(api.client.get("/readyz"), 503, "not_ready")
    finally:
        broker.up = True
    assert body["checks"]["broker"] == "failed" and body["checks"]["database"] == "ok"
    assert "hunter2" not in str(body)


def test_the_real_broker_check_against_redis_up_and_down(tmp_path: Path) -> None:
    def check_for(url: str) -> Callable[[], None]:
        return broker_check(make_celery(Settings(BROKER_URL=url, BATCHCAM_STATE_DIR=tmp_path / "state")))

    check_for("redis://127.0.0.1:6379/0")()  # the Redis the tests use answers: no exception
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = check_for(f"redis://:hunter2@127.0.0.1:{closed_port}/0")
    with api_harness(tmp_path / "api", check_broker=down) as harness:
        started = time.monotonic()
        body = assert_problem(harness.client.get("/readyz"), 503, "not_ready")
        assert time.monotonic() - started < 10  # bounded by the check's timeout, not Celery's retries
    assert body["checks"]["broker"] == "failed" and "hunter2" not in str(body)


def test_a_database_outage_answers_503_and_the_api_recovers(tmp_path: Path) -> None:
    with api_harness(tmp_path, database_proxy=True) as harness:
        assert harness.database_proxy is not None
        tenant = harness.new_tenant()
        assert harness.client.get("/v1/jobs", headers=tenant).status_code == 200  # a pooled connection
        harness.database_proxy.cut()
        try:
            for path in ("/v1/jobs", "/v1/datasets"):
                response = harness.client.get(path, headers=tenant)
                body = assert_problem(response, 503, "database_unavailable")
                assert int(response.headers["retry-after"]) > 0 and "database" in body["detail"]
        finally:
            harness.database_proxy.restore()
            restored = time.monotonic()
        # The connect breaker (persistence/connect_breaker.py) lets a probe through after its cooldown.
        while harness.client.get("/v1/jobs", headers=tenant).status_code != 200:
            assert time.monotonic() - restored < 2 * DEFAULT_COOLDOWN_S + 1, "the API did not recover"
            time.sleep(0.1)


def test_readyz_is_503_when_the_object_store_root_is_unusable(api: ApiHarness) -> None:
    moved = api.store_root.with_name("objects-away")
    api.store_root.rename(moved)
    api.store_root.write_text("a file where the store's folder should be")
    try:
        body = assert_problem(api.client.get("/readyz"), 503, "not_ready")
    finally:
        api.store_root.unlink()
        moved.rename(api.store_root)
    assert body["checks"] == {"database": "ok", "object_store": "failed", "broker": "ok"}
    assert "object_store" in body["detail"]
    assert api.client.get("/readyz").status_code == 200
    shutil.rmtree(moved, ignore_errors=True)


def test_metrics_expose_request_latency_by_route_and_jobs_by_state(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    for state in (JobState.QUEUED, JobState.QUEUED, JobState.RUNNING, JobState.FAILED):
        insert_job(api.sessions, tenant_id, state=state)
    job_id = insert_job(api.sessions, tenant_id)
    assert api.client.get(f"/v1/jobs/{job_id}", headers=headers).status_code == 200
    api.client.get("/v1/no-such-route/123")

    response = api.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    jobs = {sample.labels["state"]: sample.value for sample in families["batchcam_jobs"].samples}
    assert jobs == {"queued": 3, "running": 1, "cancelling": 0, "succeeded": 0, "failed": 1, "cancelled": 0}
    latency = families["batchcam_http_request_duration_seconds"].samples
    counted = {
        (s.labels["method"], s.labels["route"], s.labels["status"])
        for s in latency
        if s.name.endswith("_count") and s.value > 0
    }
    assert ("GET", "/v1/jobs/{job_id}", "200") in counted  # the template, not the id
    assert ("GET", "<unmatched>", "404") in counted
    assert not any(str(job_id) in s.labels.get("route", "") for s in latency)


def scrape(api: ApiHarness) -> dict[str, dict[tuple[str, ...], float]]:
    """The /metrics text, parsed: per family, its samples' values by label values."""
    response = api.client.get("/metrics")
    assert response.status_code == 200
    return {
        family.name: {tuple(sample.labels.values()): sample.value for sample in family.samples}
        for family in text_string_to_metric_families(response.text)
    }


def test_metrics_count_explanations_by_state_and_each_queues_depth_and_oldest_age(api: ApiHarness) -> None:
    # This module writes no explanation before this test: the explain queue starts empty, age 0.
    before = scrape(api)
    assert before["batchcam_queue_depth"][("explain",)] == 0
    assert before["batchcam_queue_oldest_age_seconds"][("explain",)] == 0
    assert set(before["batchcam_explanations"]) == {(state.value,) for state in JobState}

    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    model_id = insert_model(api.sessions, tenant_id)  # its job is succeeded: no train queue change
    now = datetime.now(UTC)
    for state, age in (
        (JobState.QUEUED, timedelta(minutes=30)),
        (JobState.QUEUED, timedelta(seconds=5)),
        (JobState.RUNNING, timedelta(hours=5)),  # older, but not waiting: not the queue's age
        (JobState.SUCCEEDED, timedelta(0)),
        (JobState.FAILED, timedelta(0)),
        (JobState.FAILED, timedelta(0)),
        (JobState.CANCELLED, timedelta(0)),
    ):
        insert_explanation(api.sessions, tenant_id, model_id, state=state, created_at=now - age)
    for age in (timedelta(hours=2), timedelta(0)):
        insert_job(api.sessions, tenant_id, state=JobState.QUEUED, created_at=now - age)
    insert_job(api.sessions, tenant_id, state=JobState.RUNNING, created_at=now - timedelta(hours=9))

    after = scrape(api)
    explanations, jobs = after["batchcam_explanations"], after["batchcam_jobs"]
    added = {key[0]: value - before["batchcam_explanations"][key] for key, value in explanations.items()}
    assert added == {"queued": 2, "running": 1, "cancelling": 0, "succeeded": 1, "failed": 2, "cancelled": 1}
    assert after["batchcam_queue_depth"] == {
        ("train",): jobs[("queued",)],
        ("explain",): explanations[("queued",)],
    }
    assert after["batchcam_queue_depth"][("train",)] == before["batchcam_queue_depth"][("train",)] + 2
    assert jobs[("running",)] == before["batchcam_jobs"][("running",)] + 1
    ages = after["batchcam_queue_oldest_age_seconds"]
    assert 2 * 3600 <= ages[("train",)] < 2 * 3600 + 60  # the oldest queued job, not the running one
    assert 30 * 60 <= ages[("explain",)] < 30 * 60 + 60


def test_a_database_error_skips_the_work_metrics_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = sessionmaker(create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    registry = CollectorRegistry()
    registry.register(WorkCollector(unreachable))
    with caplog.at_level(logging.WARNING, logger="api.ops.metrics"):
        text = generate_latest(registry).decode()
    assert "batchcam_queue_depth" not in text and "batchcam_jobs" not in text
    assert "metrics skipped: database error OperationalError" in caplog.text
    assert "nobody" not in caplog.text  # the connection string stays out of the log


def test_healthz_answers_while_every_worker_thread_is_taken(api: ApiHarness) -> None:
    """As in a database outage, when every threadpool thread waits on a connection."""
    portal = api.client.portal  # type: ignore[attr-defined]
    limiter = portal.call(anyio.to_thread.current_default_thread_limiter)
    holders = [object() for _ in range(int(limiter.total_tokens))]
    for holder in holders:
        portal.call(limiter.acquire_on_behalf_of, holder)
    with ThreadPoolExecutor(max_workers=1) as pool:
        probe = pool.submit(api.client.get, "/healthz")
        try:
            assert probe.result(timeout=5).status_code == 200
        finally:
            for holder in holders:
                portal.call(limiter.release_on_behalf_of, holder)
