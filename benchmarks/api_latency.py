"""Latency of ``GET /v1/jobs/{id}`` under a steady request rate from a separate process.

Starts the real API (uvicorn, one process) on a fresh, migrated Postgres database, creates a
tenant, a key and a job, then a *separate* load process sends requests on a fixed schedule
(open loop: a slow answer does not delay the next request, so queueing shows up in the numbers)
and reports p50/p90/p99/max latency and errors. Baseline measured in the same run: ``/healthz``
(no auth, no database) at the same rate.

    .venv/bin/python benchmarks/api_latency.py                 # 100 req/s for 20 s
    .venv/bin/python benchmarks/api_latency.py --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _timing import machine_info, markdown_table
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the tests' throw-away Postgres helper

from service.postgres import fresh_database, run_alembic  # noqa: E402

from persistence.api_keys import create_api_key  # noqa: E402
from persistence.db import make_session_factory, transaction  # noqa: E402
from persistence.models import Job  # noqa: E402


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    errors: int
    late_starts: int  # requests sent more than 10 ms after their scheduled time (client saturated)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load(
    url: str, headers: dict[str, str], rate: float, seconds: float, results: multiprocessing.Queue
) -> None:
    """The load process: one request every 1/rate s; each answer timed from its scheduled start."""
    latencies, errors, late = [], 0, 0
    with httpx.Client(headers=headers, timeout=5.0, limits=httpx.Limits(max_connections=64)) as client:
        start = time.perf_counter() + 0.5
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif -delay > 0.010:
                late += 1
            try:
                response = client.get(url)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(1000 * (time.perf_counter() - scheduled))
            errors += not ok
    results.put(LoadResult(latencies, errors, late))


def run_load(url: str, headers: dict[str, str], rate: float, seconds: float) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=load, args=(url, headers, rate, seconds, results))
    process.start()
    result = results.get(timeout=seconds + 120)
    process.join()
    return result


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit("the API did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()

    machine = machine_info().header()  # before the load: its load average is the idle one
    with fresh_database("batchcam_bench") as url, tempfile.TemporaryDirectory() as state:
        run_alembic(url, upgrade=True, revision="head")
        sessions = make_session_factory(create_engine(url))
        with transaction(sessions) as session:
            key = create_api_key(session, "bench", "bench")
            job = Job(tenant_id=key.tenant_id, spec={"dataset": "shapes", "epochs": 1})
            session.add(job)
            session.flush()
            job_id = job.id
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "BATCHCAM_STATE_DIR": state}
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "uvicorn"),
                "api.main:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            headers = {"Authorization": f"Bearer {key.secret}"}
            run_load(f"{base}/v1/jobs/{job_id}", headers, options.rate, 2.0)  # warm-up
            results = {
                "GET /healthz (baseline)": run_load(f"{base}/healthz", {}, options.rate, options.seconds),
                "GET /v1/jobs/{id}": run_load(
                    f"{base}/v1/jobs/{job_id}", headers, options.rate, options.seconds
                ),
            }
        finally:
            server.terminate()
            server.wait()

    print(machine)
    print(
        f"Load: {options.rate:g} requests/s for {options.seconds:g} s from a separate process (open loop); "
        "API: uvicorn, 1 process, Postgres on localhost.\n"
    )
    baseline = results["GET /healthz (baseline)"].percentile(0.99)
    rows = []
    for name, result in results.items():
        rows.append(
            [
                name,
                str(len(result.latencies_ms)),
                str(result.errors),
                f"{result.percentile(0.5):.1f}",
                f"{result.percentile(0.9):.1f}",
                f"{result.percentile(0.99):.1f}",
                f"{max(result.latencies_ms):.1f}",
                f"{result.percentile(0.99) / baseline:.2f}×",
                str(result.late_starts),
            ]
        )
    print(
        markdown_table(
            [
                "endpoint",
                "requests",
                "errors",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "p99 ÷ healthz p99",
                "late sends",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
