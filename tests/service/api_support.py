"""What the API tests share: an app on a fresh migrated Postgres and a real local object store,
tenants with keys, an enqueue recorder that checks the job row is committed when it is called."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from persistence.api_keys import create_api_key, verify_api_key
from persistence.db import transaction
from persistence.models import Job
from persistence.objects import LocalObjectStore
from persistence.settings import Settings
from service.postgres import fresh_database, run_alembic
from service.tcp_proxy import TcpProxy

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://batchcam.dev/problems/"


@dataclass
class EnqueueRecorder:
    """The injected ``enqueue_training``. It looks for the job through a connection of its own, so a
    call made before the commit would see nothing; what it saw is kept for the tests to assert."""

    engine: Engine
    calls: list[uuid.UUID] = field(default_factory=list)
    committed_when_called: list[bool] = field(default_factory=list)
    fail: bool = False

    def __call__(self, job_id: uuid.UUID) -> None:
        with self.engine.connect() as connection:
            state = connection.scalar(select(Job.state).where(Job.id == job_id))
        self.calls.append(job_id)
        self.committed_when_called.append(state == "queued")
        if self.fail:
            raise ConnectionError("broker down (test)")


@dataclass
class ApiHarness:
    client: TestClient
    sessions: sessionmaker[Session]
    store: LocalObjectStore
    enqueued: EnqueueRecorder
    store_root: Path
    database_proxy: TcpProxy | None = None  # between the app and Postgres, when asked for

    def new_tenant(self, name: str | None = None) -> dict[str, str]:
        """A fresh tenant with one key; returns the ``Authorization`` header for it."""
        with transaction(self.sessions) as session:
            key = create_api_key(session, name or f"tenant-{uuid.uuid4().hex[:10]}", "tests")
        return {"Authorization": f"Bearer {key.secret}"}

    def tenant_id(self, headers: dict[str, str]) -> uuid.UUID:
        with self.sessions() as session:
            verified = verify_api_key(session, headers["Authorization"].removeprefix("Bearer "))
        assert verified is not None
        return verified.tenant_id


@contextmanager
def api_harness(
    tmp_path: Path,
    *,
    database_proxy: bool = False,
    settings_options: dict[str, Any] | None = None,
    **create_app_options: Any,
) -> Iterator[ApiHarness]:
    """A migrated throw-away database, a local object store and the app on them. With
    ``database_proxy`` the app reaches Postgres through a :class:`TcpProxy` the test can cut (the
    harness's own sessions connect directly); ``settings_options`` are more ``Settings`` fields."""
    with fresh_database("batchcam_api") as url, ExitStack() as stack:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        stack.callback(engine.dispose)
        proxy, app_url = None, url
        if database_proxy:
            direct = make_url(url)
            proxy = stack.enter_context(TcpProxy(direct.host or "127.0.0.1", direct.port or 5432))
            app_url = direct.set(port=proxy.port).render_as_string(hide_password=False)
        store_root = tmp_path / "objects"
        store = LocalObjectStore(store_root)
        enqueued = EnqueueRecorder(engine)
        settings = Settings(
            DATABASE_URL=app_url, BATCHCAM_STATE_DIR=tmp_path / "state", **(settings_options or {})
        )
        app = create_app(settings, enqueue_training=enqueued, object_store=store, **create_app_options)
        with TestClient(app) as client:
            sessions = sessionmaker(engine, expire_on_commit=False)
            yield ApiHarness(client, sessions, store, enqueued, store_root, proxy)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json of this status and ``type``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + code, body
    assert body["status"] == status and body["code"] == code and body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def send_raw(
    api: ApiHarness, method: str, path: str, headers: dict[str, str | bytes], content: bytes = b""
) -> httpx.Response:
    """A request whose header bytes reach the app as sent, as a server hands them over (the test
    client re-encodes header values as UTF-8, so a Latin-1 byte such as ``²``, 0xB2, cannot be sent
    with it); a ``Content-Length`` given here is kept. The response is read whole."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers, content=content)

    return anyio.run(send)


def npz_bytes(n_per_class: int = 6, *, classes: int = 2, size: int = 8, seed: int = 0, **extra: Any) -> bytes:
    """A small valid ``.npz`` dataset; ``extra`` arrays replace or add members."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    arrays = {
        "images": rng.integers(0, 256, (len(labels), size, size), dtype=np.uint8),
        "labels": labels,
        **extra,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def insert_job(sessions: sessionmaker[Session], tenant_id: uuid.UUID, **values: Any) -> uuid.UUID:
    """A job row written directly (as a worker would leave it), for read-side tests."""
    with transaction(sessions) as session:
        job = Job(tenant_id=tenant_id, spec={"dataset": "shapes", "epochs": 2}, progress={}, **values)
        session.add(job)
        session.flush()
        return job.id


def refused_within(api: ApiHarness, headers: dict[str, str], seconds: float) -> httpx.Response:
    """The first 401 answer to ``GET /v1/jobs`` within ``seconds`` (a revoked key: the API may have
    remembered it until the revocation's notification arrives); later requests stay refused."""
    deadline = time.monotonic() + seconds
    while (response := api.client.get("/v1/jobs", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key was still accepted"
        time.sleep(0.005)
    assert all(api.client.get("/v1/jobs", headers=headers).status_code == 401 for _ in range(3))
    return response
