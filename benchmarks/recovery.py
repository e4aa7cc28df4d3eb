"""How the service recovers from a broker restart and a database outage (issue 16's figures).

Starts a fresh Postgres database (reached by the service through a TCP proxy the script can cut), a
private Redis without persistence (which the script restarts: every message it held is lost), a
local object store, the API (one uvicorn process) and a training worker with beat, all with their
production settings except a 20 s lease (so the database outage below outlasts it in a short run).

1. **Broker restart**: Redis is killed, a job is submitted while it is down (the API answers 202;
   its wake-up cannot be sent), Redis starts again empty. Measured: restart → the job claimed.
2. **Database outage longer than a lease**: a job trains while a second one waits for the worker;
   the proxy cuts the database for lease + 15 s, and a second worker started during the outage
   takes the waiting job's message (its claim cannot reach the database). Measured: database back →
   the waiting job claimed; the training job's attempts, epochs recorded twice, models left unnamed.

Every job must end ``succeeded``: a job that does not is counted as lost.

    .venv/bin/python benchmarks/recovery.py
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _timing import machine_info, markdown_table
from explain_latency import (
    REPO,
    api_command,
    free_port,
    private_redis,
    process_group,
    progress,
    tail,
    wait_ready,
    worker_command,
)
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(REPO / "tests"))
from service.postgres import fresh_database, run_alembic
from service.tcp_proxy import TcpProxy

from persistence.api_keys import create_api_key
from persistence.db import make_session_factory, transaction
from persistence.models import JobEvent, Model

LEASE_S = 20
POLL_S = 0.1
SHORT = {"dataset": "shapes", "model": "simple_cnn", "mode": "baseline", "epochs": 1, "batch_size": 32}
LONG = {**SHORT, "epochs": 6, "checkpoint_every_steps": 10}


def beat_worker(folder: Path) -> list[str]:
    return [*worker_command("train,maintenance"), "-B", "--schedule", str(folder / "beat-schedule")]


def submit(client: httpx.Client, spec: dict[str, Any]) -> str:
    created = client.post("/v1/jobs", json=spec)
    if created.status_code != 202:
        raise SystemExit(f"POST /v1/jobs: {created.status_code} {created.text[:300]}")
    return str(created.json()["id"])


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/jobs/{job_id}").json())


def wait_until(client: httpx.Client, job_id: str, done: Any, timeout: float, what: str) -> float:
    """Seconds until ``done(job)`` holds, polled every 100 ms."""
    started = time.monotonic()
    while not done(job(client, job_id)):
        if time.monotonic() - started > timeout:
            raise SystemExit(f"job {job_id}: {what} not seen in {timeout:.0f} s: {job(client, job_id)}")
        time.sleep(POLL_S)
    return time.monotonic() - started


def claimed(state: dict[str, Any]) -> bool:
    return state["state"] != "queued"


def ended(state: dict[str, Any]) -> bool:
    return bool(state["terminal"])


@dataclass
class Findings:
    broker_restart_to_claim_s: float = 0.0
    database_back_to_claim_s: float = 0.0
    training_attempts: int = 0
    epochs_recorded_twice: int = 0
    models_unnamed: int = 0
    jobs: int = 0
    jobs_lost: int = 0


def run(folder: Path) -> Findings:
    found = Findings()
    redis_port = free_port()
    with contextlib.ExitStack() as stack:
        progress("starting Postgres (behind a proxy), Redis, the API and a worker with beat ...")
        database = stack.enter_context(fresh_database("batchcam_recovery"))
        run_alembic(database, upgrade=True, revision="head")
        url = make_url(database)
        proxy = stack.enter_context(TcpProxy(url.host or "127.0.0.1", url.port or 5432))
        env = {
            **os.environ,
            "DATABASE_URL": url.set(port=proxy.port).render_as_string(hide_password=False),
            "BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "OBJECT_STORE_URL": f"file://{folder / 'objects'}",
            "BATCHCAM_STATE_DIR": str(folder / "state"),
            "BATCHCAM_LEASE_SECONDS": str(LEASE_S),
        }
        broker = contextlib.ExitStack()
        broker.enter_context(private_redis(folder, redis_port))
        port = free_port()
        api = stack.enter_context(process_group(api_command(port), env, folder / "api.log"))
        stack.enter_context(process_group(beat_worker(folder), env, folder / "worker.log"))
        sessions = make_session_factory(create_engine(database))  # not through the proxy
        with transaction(sessions) as session:
            key = create_api_key(session, "bench", "recovery").secret
        client = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
        )
        wait_ready(client, api, folder / "api.log")
        jobs = [submit(client, SHORT)]  # warms the worker
        wait_until(client, jobs[0], ended, 300, "the warm-up job's end")

        progress("1. Redis killed; a job submitted while it is down; Redis restarted empty ...")
        broker.close()
        jobs.append(submit(client, SHORT))
        time.sleep(5)
        broker.enter_context(private_redis(folder, redis_port))
        found.broker_restart_to_claim_s = wait_until(client, jobs[-1], claimed, 300, "the claim")
        wait_until(client, jobs[-1], ended, 300, "the end")

        progress(f"2. the database cut for {LEASE_S + 15} s while a job trains and another waits ...")
        training = submit(client, LONG)
        jobs.append(training)
        wait_until(client, training, lambda j: (j["progress"].get("step") or 0) >= 10, 300, "training")
        jobs.append(submit(client, SHORT))  # waits: the worker runs one task at a time
        proxy.cut()
        second = folder / "worker-2.log"
        stack.enter_context(process_group(worker_command("train"), env, second))
        time.sleep(LEASE_S + 15)
        proxy.restore()
        found.database_back_to_claim_s = wait_until(client, jobs[-1], claimed, 300, "the claim")
        for each in jobs[-2:]:
            wait_until(client, each, ended, 600, "the end")

        found.jobs = len(jobs)
        found.jobs_lost = sum(job(client, each)["state"] != "succeeded" for each in jobs)
        found.training_attempts = int(job(client, training)["attempt"])
        with sessions() as session:
            epochs = session.scalars(
                select(JobEvent.data["epoch"].as_integer()).where(
                    JobEvent.job_id == training, JobEvent.type == "epoch"
                )
            ).all()
            models = session.scalar(select(func.count()).select_from(Model)) or 0
        found.epochs_recorded_twice = len(epochs) - len(set(epochs))
        stored = {
            path.parent.name for path in (folder / "objects").glob("tenants/*/models/*/model.safetensors")
        }
        found.models_unnamed = len(stored) - models
        if found.jobs_lost:
            progress(tail(folder / "worker.log") + "\n" + tail(second))
        broker.close()
    return found


def main() -> None:
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="batchcam-recovery-") as tmp:
        found = run(Path(tmp))
    rows = [
        [
            "broker restarted empty → the job submitted during the outage claimed",
            f"{found.broker_restart_to_claim_s:.1f} s",
            "≤ 30 s",
        ],
        [
            "database back (outage of lease + 15 s) → the waiting job claimed",
            f"{found.database_back_to_claim_s:.1f} s",
            "≤ 30 s",
        ],
        ["the job training through the outage: attempts", str(found.training_attempts), "—"],
        ["… epochs recorded twice (trained again)", str(found.epochs_recorded_twice), "0"],
        ["… trained models no row names", str(found.models_unnamed), "0"],
        ["jobs lost (not succeeded)", f"{found.jobs_lost} of {found.jobs}", "0"],
    ]
    print(machine.header())
    print(f"Lease {LEASE_S} s; reaper every 30 s (the default); Celery worker with beat; private Redis.")
    print(markdown_table(["measure", "value", "target"], rows))


if __name__ == "__main__":
    main()
