"""Latency of ``GET /v1/jobs/{id}`` under a steady request rate from a separate process.

Starts the real API (uvicorn, one process) on a fresh, migrated Postgres database, creates a
tenant, a key and a job, then a *separate* load process sends requests on a fixed schedule
(open loop: a slow answer does not delay the next request, so queueing shows up in the numbers)
and reports p50/p90/p99/max latency and errors. Baseline measured in the same run: ``/healthz``
(no auth, no database) at the same rate.

To tell a slow service from a busy machine, each phase also reports the API's own view of the same
requests (its ``/metrics`` latency histogram, scraped before and after: the p99 as a bucket bound and
the requests that took over 50 ms inside the app) and how busy the machine's CPUs were meanwhile.

    .venv/bin/python benchmarks/api_latency.py                 # 100 req/s for 20 s
    .venv/bin/python benchmarks/api_latency.py --rate 200 --seconds 10
    .venv/bin/python benchmarks/api_latency.py --quick         # 5 s per phase
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from _timing import machine_info, markdown_table
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the tests' throw-away Postgres helper

from service.postgres import fresh_database, run_alembic  # noqa: E402

from persistence.api_keys import create_api_key  # noqa: E402
from persistence.db import make_session_factory, transaction  # noqa: E402
from persistence.models import Job  # noqa: E402

REQUEST_HISTOGRAM = "batchcam_http_request_duration_seconds"  # api/metrics.py
SLOW_SERVER_S = 0.05


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    errors: int
    late_starts: int  # requests sent more than 10 ms after their scheduled time (client saturated)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class ServerView:
    """One phase as the API saw it (its histogram's bucket counts, differenced) and the CPUs' load."""

    buckets: dict[float, float]  # upper bound (s) → requests at most that slow, this phase only
    cpu_busy: float | None  # fraction of all CPUs' time not idle during the phase (Linux)

    def p99_bound_ms(self) -> str:
        total = self.buckets.get(float("inf"), 0.0)
        for bound in sorted(self.buckets):
            if total and self.buckets[bound] >= 0.99 * total:
                return "> 60,000" if bound == float("inf") else f"≤ {1000 * bound:g}"
        return "n/a"

    def slower_than(self, seconds: float) -> str:
        if seconds not in self.buckets:
            return "n/a"
        return f"{self.buckets.get(float('inf'), 0.0) - self.buckets[seconds]:.0f}"


def histogram(base: str, route: str) -> dict[float, float]:
    """Cumulative request counts by bucket bound for ``route`` (all statuses), from ``/metrics``."""
    counts: dict[float, float] = {}
    try:
        text = httpx.get(f"{base}/metrics", timeout=5).text
    except httpx.HTTPError:
        return counts
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{REQUEST_HISTOGRAM}_bucket" and sample.labels.get("route") == route:
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
    return counts


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat; None where there is none."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


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


def measured_phase(
    base: str, route: str, url: str, headers: dict[str, str], rate: float, seconds: float
) -> tuple[LoadResult, ServerView]:
    """One load phase, with the API's histogram and the CPU counters read before and after."""
    before, cpu_before = histogram(base, route), cpu_times()
    result = run_load(url, headers, rate, seconds)
    after, cpu_after = histogram(base, route), cpu_times()
    buckets = {bound: count - before.get(bound, 0.0) for bound, count in after.items()}
    busy = None
    if cpu_before is not None and cpu_after is not None and cpu_after[1] > cpu_before[1]:
        busy = (cpu_after[0] - cpu_before[0]) / (cpu_after[1] - cpu_before[1])
    return result, ServerView(buckets, busy)


@dataclass(frozen=True)
class Seed:
    """A fresh, migrated database holding a tenant, its API key and one queued job."""

    database_url: str
    secret: str
    job_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@contextmanager
def seeded_database() -> Iterator[Seed]:
    with fresh_database("batchcam_bench") as url:
        run_alembic(url, upgrade=True, revision="head")
        sessions = make_session_factory(create_engine(url))
        with transaction(sessions) as session:
            key = create_api_key(session, "bench", "bench")
            job = Job(tenant_id=key.tenant_id, spec={"dataset": "shapes", "epochs": 1})
            session.add(job)
            session.flush()
            job_id = str(job.id)
        yield Seed(url, key.secret, job_id)


def api_environment(seed: Seed, state: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": seed.database_url, "BATCHCAM_STATE_DIR": state}


def start_api(seed: Seed, state: str, port: int) -> subprocess.Popen[bytes]:
    """The API as production runs it: ``uvicorn api.main:app``, one process, from the repository root."""
    command = [str(Path(sys.executable).parent / "uvicorn"), "api.main:app", "--port", str(port)]
    return subprocess.Popen([*command, "--log-level", "warning"], cwd=REPO, env=api_environment(seed, state))


def wait_ready(
    base: str,
    path: str = "/healthz",
    interval: float = 0.3,
    timeout: float = 60.0,
    server: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``base + path`` every ``interval`` s until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the API exited with status {server.returncode} before it was ready")
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise SystemExit("the API did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 s per phase")
    options = parser.parse_args()
    if options.quick:
        options.seconds = 5.0

    machine = machine_info().header()  # before the load: its load average is the idle one
    with seeded_database() as seed, tempfile.TemporaryDirectory() as state:
        port = free_port()
        server = start_api(seed, state, port)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, server=server)
            job_url = f"{base}/v1/jobs/{seed.job_id}"
            run_load(job_url, seed.headers, options.rate, 2.0)  # warm-up
            results = {
                "GET /healthz (baseline)": measured_phase(
                    base, "/healthz", f"{base}/healthz", {}, options.rate, options.seconds
                ),
                "GET /v1/jobs/{id}": measured_phase(
                    base, "/v1/jobs/{job_id}", job_url, seed.headers, options.rate, options.seconds
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
    baseline = results["GET /healthz (baseline)"][0].percentile(0.99)
    rows = []
    for name, (result, inside) in results.items():
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
                inside.p99_bound_ms(),
                inside.slower_than(SLOW_SERVER_S),
                "n/a" if inside.cpu_busy is None else f"{100 * inside.cpu_busy:.0f}",
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
                "server p99 ms",
                f"server > {1000 * SLOW_SERVER_S:g} ms",
                "CPU busy %",
            ],
            rows,
        )
    )
    print(
        "\nserver: the same requests timed inside the API (its /metrics histogram; p99 as the bucket "
        "bound that holds it). late sends: requests sent > 10 ms after their slot because the previous "
        "answer had not come back. CPU busy: all cores, all processes, during the phase. A client p99 "
        "far above the server's, with the CPUs near 100 %, is time lost outside the app (scheduling "
        "on a busy machine), not in the service."
    )


if __name__ == "__main__":
    main()
