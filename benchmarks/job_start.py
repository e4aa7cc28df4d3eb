"""How fast a training job starts and ends through the service, against ``batchcam train`` alone.

Starts a fresh Postgres database, a private Redis, a local object store, the API (one uvicorn
process) and one training worker (``celery -A worker.tasks worker -Q train``), once per way a job's
training child can start (``BATCHCAM_TRAIN_CHILD_START``: ``forkserver``, the default, and ``spawn``,
the baseline). After one untimed job warms the worker, each timed job is followed by polling
``GET /v1/jobs/{id}`` every 10 ms: submit → claimed, submit → first training step visible, submit →
succeeded. The library baseline runs ``batchcam train`` with the same spec as a command (a fresh
interpreter, as a user runs it) on the same machine.

    .venv/bin/python benchmarks/job_start.py              # 3 jobs per variant, 2 CLI runs
    .venv/bin/python benchmarks/job_start.py --jobs 2 --cli-runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _timing import machine_info, markdown_table
from explain_latency import (
    BIN,
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
from service.postgres import fresh_database, run_alembic
from sqlalchemy import create_engine

from persistence.api_keys import create_api_key
from persistence.db import make_session_factory, transaction

SPEC: dict[str, Any] = {"dataset": "shapes", "epochs": 1, "mode": "batchcam", "seed": 0}
POLL_S = 0.01
TARGET_FIRST_STEP_S, TARGET_WALL_RATIO = 1.0, 1.1


@dataclass(frozen=True)
class JobTimes:
    claimed_s: float
    first_step_s: float
    succeeded_s: float


def timed_job(client: httpx.Client) -> JobTimes:
    sent = time.perf_counter()
    created = client.post("/v1/jobs", json=SPEC)
    if created.status_code != 202:
        raise SystemExit(f"POST /v1/jobs: {created.status_code} {created.text[:300]}")
    link = created.json()["links"]["job"]
    claimed = first_step = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = client.get(link).json()
        now = time.perf_counter() - sent
        if claimed is None and job["state"] != "queued":
            claimed = now
        if first_step is None and (job.get("progress") or {}).get("step"):
            first_step = now
        if job["state"] in ("succeeded", "failed", "cancelled"):
            if job["state"] != "succeeded":
                raise SystemExit(f"the job ended {job['state']}: {job.get('failure')}")
            created_at = datetime.fromisoformat(job["created_at"]).timestamp()
            finished_at = datetime.fromisoformat(job["finished_at"]).timestamp()
            return JobTimes(claimed or now, first_step or now, finished_at - created_at)
        time.sleep(POLL_S)
    raise SystemExit(f"{link} did not end in 10 minutes")


def service_jobs(folder: Path, database: str, broker: str, start: str, jobs: int) -> list[JobTimes]:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "BROKER_URL": broker,
        "OBJECT_STORE_URL": f"file://{folder / 'objects'}",
        "BATCHCAM_STATE_DIR": str(folder / "state"),
        "BATCHCAM_TRAIN_CHILD_START": start,
    }
    port = free_port()
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(process_group(api_command(port), env, folder / f"api-{start}.log"))
        worker_log = folder / f"worker-{start}.log"
        stack.enter_context(process_group(worker_command("train"), env, worker_log))
        sessions = make_session_factory(create_engine(database))
        with transaction(sessions) as session:
            key = create_api_key(session, "bench", f"bench-{start}")
        client = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {key.secret}"},
                timeout=30,
            )
        )
        wait_ready(client, api, folder / f"api-{start}.log")
        progress(f"{start}: one untimed job, then {jobs} timed ...")
        try:
            timed_job(client)
            return [timed_job(client) for _ in range(jobs)]
        except SystemExit:
            progress(tail(worker_log))
            raise


def cli_seconds(folder: Path, runs: int) -> list[float]:
    seconds = []
    for run in range(runs):
        command = [str(BIN / "batchcam"), "train", "--out", str(folder / f"cli-{run}")]
        command += [f"--{name.replace('_', '-')}={value}" for name, value in SPEC.items()]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3, help="timed jobs per variant")
    parser.add_argument("--cli-runs", type=int, default=2)
    options = parser.parse_args()
    machine = machine_info()
    results: dict[str, list[JobTimes]] = {}
    with tempfile.TemporaryDirectory(prefix="batchcam-job-start-") as name, contextlib.ExitStack() as stack:
        folder = Path(name)
        database = stack.enter_context(fresh_database("batchcam_job_start"))
        run_alembic(database, upgrade=True, revision="head")
        broker = stack.enter_context(private_redis(folder))
        for start in ("forkserver", "spawn"):
            results[start] = service_jobs(folder, database, broker, start, options.jobs)
        progress(f"batchcam train, {options.cli_runs} run(s) ...")
        cli = statistics.median(cli_seconds(folder, options.cli_runs))
    print(machine.header())
    print(f"Spec: {SPEC}; the API polled every {POLL_S * 1000:.0f} ms; medians over {options.jobs} jobs.\n")
    rows = []
    for start, times in results.items():
        first = statistics.median(t.first_step_s for t in times)
        wall = statistics.median(t.succeeded_s for t in times)
        rows.append(
            [
                start,
                f"{statistics.median(t.claimed_s for t in times):.2f}",
                f"{first:.2f}",
                f"{wall:.2f}",
                f"{cli:.2f}",
                f"{wall / cli:.2f}×",
                "met" if first <= TARGET_FIRST_STEP_S else "not met",
                "met" if wall / cli <= TARGET_WALL_RATIO else "not met",
            ]
        )
    headers = [
        "child start",
        "submit → claimed s",
        "submit → first step s",
        "submit → succeeded s",
        "batchcam train s",
        "service ÷ CLI",
        f"first step ≤ {TARGET_FIRST_STEP_S:.0f} s",
        f"≤ {TARGET_WALL_RATIO}×",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
