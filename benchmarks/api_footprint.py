"""What the API process costs: start-up time, memory, the heavy modules it loads, and its latency.

Issue 15's before/after measure of a torch-free API. The API is started as production starts it
(``uvicorn api.main:app``, one process, from the repository root) on a fresh, migrated Postgres
database with a tenant, a key and a job (``api_latency.py``'s helpers), and the script reports:

- start-up: seconds from ``Popen`` to the first ``/readyz`` 200 (polled every 10 ms), median of
  ``--starts`` fresh processes;
- memory: the process's resident set (``VmRSS`` in ``/proc/PID/status``) right after ready, after
  1,000 requests (job, job list, ``/healthz``, a 404 and a 422 problem, in turn) and after the
  latency phases, plus its peak (``VmHWM``);
- modules: whether ``torch``, ``matplotlib``, ``celery`` and ``kombu`` are in ``sys.modules`` of a
  probe process that imports ``api.main``, serves it with uvicorn in a thread and, once ``/readyz``
  and a job request have answered, prints them; cross-checked against the shared libraries mapped
  into the real API process (``/proc/PID/maps``: libtorch, matplotlib's extensions);
- latency: ``GET /v1/jobs/{id}`` p50/p99 at ``--rate`` requests/s from a separate process, against
  ``/healthz`` at the same rate in the same run (``api_latency.py``'s phases).

    .venv/bin/python benchmarks/api_footprint.py                          # 3 starts, 10 s per phase
    .venv/bin/python benchmarks/api_footprint.py --seconds 20 --json footprint.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _timing import machine_info, markdown_table, write_json
from api_latency import (
    REPO,
    SLOW_SERVER_S,
    LoadResult,
    Seed,
    ServerView,
    api_environment,
    free_port,
    measured_phase,
    run_load,
    seeded_database,
    start_api,
    wait_ready,
)

HEAVY_MODULES = ("torch", "matplotlib", "celery", "kombu")
MAPPED_LIBRARIES = {"torch": "libtorch", "matplotlib": "/matplotlib/"}  # celery, kombu: pure Python
RSS_TARGET_MB = 150
BASELINE = "GET /healthz (baseline)"
READY_TARGET_S = 2.0

# Imports api.main as uvicorn would, serves it in a thread, asks /readyz and a job (a request may
# import lazily), then prints which heavy modules are loaded and where api/ came from.
PROBE = """
import json, sys, threading, time, urllib.request
import uvicorn
import api.main
port, job_id, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = uvicorn.Server(uvicorn.Config(api.main.app, host="127.0.0.1", port=port, log_level="warning"))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
base = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 120
while True:
    try:
        urllib.request.urlopen(f"{base}/readyz", timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
request = urllib.request.Request(f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {secret}"})
urllib.request.urlopen(request, timeout=10).close()
server.should_exit = True
thread.join(10)
names = sys.argv[4:]
print(json.dumps({
    "api_file": sys.modules["api"].__file__,
    "loaded": {name: name in sys.modules for name in names},
    "module_count": len(sys.modules),
}))
"""


def memory_mib(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of ``pid`` in MiB, from ``/proc/PID/status``."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        field, _, rest = line.partition(":")
        if field in ("VmRSS", "VmHWM"):
            values[field] = int(rest.split()[0]) / 1024  # kB
    return values


def mapped_libraries(pid: int) -> dict[str, bool]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name: marker in maps for name, marker in MAPPED_LIBRARIES.items()}


def start_and_time(seed: Seed, state: str) -> tuple[subprocess.Popen[bytes], str, float]:
    """A fresh API process and the seconds from its ``Popen`` to the first ``/readyz`` 200."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    server = start_api(seed, state, port)
    wait_ready(base, "/readyz", interval=0.01, timeout=300, server=server)
    return server, base, time.perf_counter() - start


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait()


def request_mix(base: str, seed: Seed, total: int) -> dict[str, int]:
    """``total`` requests, one kind after the other; counts answers with an unexpected status."""
    kinds = [
        (f"/v1/jobs/{seed.job_id}", 200),
        ("/v1/jobs", 200),
        ("/healthz", 200),
        (f"/v1/jobs/{uuid.uuid4()}", 404),
        ("/v1/jobs/not-a-uuid", 422),
    ]
    unexpected = 0
    with httpx.Client(base_url=base, headers=seed.headers, timeout=10) as client:
        for i in range(total):
            path, status = kinds[i % len(kinds)]
            unexpected += client.get(path).status_code != status
    return {"requests": total, "unexpected_status": unexpected}


def probe_modules(seed: Seed, state: str) -> dict[str, Any]:
    """Runs ``PROBE`` with the API's environment and working directory; its JSON answer."""
    command = [sys.executable, "-c", PROBE, str(free_port()), seed.job_id, seed.secret, *HEAVY_MODULES]
    done = subprocess.run(
        command, cwd=REPO, env=api_environment(seed, state), capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"the module probe failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def phase_numbers(result: LoadResult, inside: ServerView) -> dict[str, Any]:
    return {
        "requests": len(result.latencies_ms),
        "errors": result.errors,
        "p50_ms": result.percentile(0.5),
        "p99_ms": result.percentile(0.99),
        "late_sends": result.late_starts,
        "server_p99_bound_ms": inside.p99_bound_ms(),
        "server_slower_than_50ms": inside.slower_than(SLOW_SERVER_S),
        "cpu_busy": inside.cpu_busy,
    }


def measure(options: argparse.Namespace) -> dict[str, Any]:
    """Every number of the report, as written to ``--json``."""
    with seeded_database() as seed, tempfile.TemporaryDirectory() as state:
        starts, ready_rss = [], []
        for attempt in range(options.starts):
            server, base, seconds = start_and_time(seed, state)
            starts.append(seconds)
            ready_rss.append(memory_mib(server.pid)["VmRSS"])
            print(f"start {attempt + 1}: ready in {seconds:.2f} s, {ready_rss[-1]:.0f} MiB", file=sys.stderr)
            if attempt < options.starts - 1:
                stop(server)
        try:  # the last process stays up for the rest
            mapped = mapped_libraries(server.pid)
            mix = request_mix(base, seed, options.requests)
            after_mix = memory_mib(server.pid)["VmRSS"]
            print(f"after {options.requests} requests: {after_mix:.0f} MiB", file=sys.stderr)
            job_url = f"{base}/v1/jobs/{seed.job_id}"
            run_load(job_url, seed.headers, options.rate, 2.0)  # warm-up
            phases = {
                BASELINE: measured_phase(
                    base, "/healthz", f"{base}/healthz", {}, options.rate, options.seconds
                ),
                "GET /v1/jobs/{id}": measured_phase(
                    base, "/v1/jobs/{job_id}", job_url, seed.headers, options.rate, options.seconds
                ),
            }
            after_phases = memory_mib(server.pid)
        finally:
            stop(server)
        probe = probe_modules(seed, state)
    return {
        "startup_s": {"median": statistics.median(starts), "samples": starts},
        "rss_mib": {
            "after_ready": statistics.median(ready_rss),
            "after_ready_samples": ready_rss,
            "after_requests": after_mix,
            "after_latency_phases": after_phases["VmRSS"],
            "peak": after_phases["VmHWM"],
        },
        "request_mix": mix,
        "modules": {
            "in_sys_modules": probe["loaded"],
            "mapped": mapped,
            "module_count": probe["module_count"],
        },
        "api_file": probe["api_file"],
        "load_average_1min_end": os.getloadavg()[0],
        "latency": {name: phase_numbers(*phase) for name, phase in phases.items()},
    }


def footprint_table(numbers: dict[str, Any]) -> str:
    startup, rss, mix = numbers["startup_s"], numbers["rss_mib"], numbers["request_mix"]
    count = len(startup["samples"])
    target = f"≤ {RSS_TARGET_MB} MB ({RSS_TARGET_MB * 1e6 / 2**20:.0f} MiB)"
    rows = [
        [
            f"start → first /readyz 200 (s), median of {count}",
            f"{startup['median']:.2f}",
            f"≤ {READY_TARGET_S:g} s (quiet machine)",
            ", ".join(f"{value:.2f}" for value in startup["samples"]),
        ],
        [
            f"RSS right after ready (MiB), median of {count}",
            f"{rss['after_ready']:.0f}",
            target,
            ", ".join(f"{value:.0f}" for value in rss["after_ready_samples"]),
        ],
        [
            f"RSS after {mix['requests']} requests (MiB)",
            f"{rss['after_requests']:.0f}",
            target,
            f"{mix['unexpected_status']} unexpected statuses",
        ],
        ["RSS after the latency phases (MiB)", f"{rss['after_latency_phases']:.0f}", target, ""],
        ["RSS peak, VmHWM (MiB)", f"{rss['peak']:.0f}", "", ""],
    ]
    modules = numbers["modules"]
    for name in HEAVY_MODULES:
        mapped = modules["mapped"].get(name)
        note = "pure Python: not in maps" if mapped is None else f"mapped: {'yes' if mapped else 'no'}"
        rows.append(
            [f"`{name}` in sys.modules", "yes" if modules["in_sys_modules"][name] else "no", "no", note]
        )
    return markdown_table(["measure", "value", "issue 15 target", "samples / notes"], rows)


def latency_table(latency: dict[str, dict[str, Any]]) -> str:
    baseline = latency[BASELINE]
    rows = [
        [
            name,
            str(phase["requests"]),
            str(phase["errors"]),
            f"{phase['p50_ms']:.1f}",
            f"{phase['p99_ms']:.1f}",
            f"{phase['p50_ms'] / baseline['p50_ms']:.2f}×",
            f"{phase['p99_ms'] / baseline['p99_ms']:.2f}×",
            str(phase["late_sends"]),
            phase["server_p99_bound_ms"],
            phase["server_slower_than_50ms"],
            "n/a" if phase["cpu_busy"] is None else f"{100 * phase['cpu_busy']:.0f}",
        ]
        for name, phase in latency.items()
    ]
    headers = ["endpoint", "requests", "errors", "p50 ms", "p99 ms", "p50 ÷ healthz", "p99 ÷ healthz"]
    headers += ["late sends", "server p99 ms", f"server > {1000 * SLOW_SERVER_S:g} ms", "CPU busy %"]
    return markdown_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="fresh API processes timed to ready")
    parser.add_argument("--requests", type=int, default=1000, help="the request mix before the RSS reading")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second in the latency phases")
    parser.add_argument("--seconds", type=float, default=10.0, help="per latency phase")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers")
    options = parser.parse_args()

    machine = machine_info()  # before any work: its load average is the machine's, not ours
    numbers = measure(options)
    print(machine.header())
    print(
        f"API: uvicorn api.main:app, 1 process, Postgres on localhost; api/ from {numbers['api_file']}; "
        f"load avg {numbers['load_average_1min_end']:.2f} at the end. RSS from /proc/PID/status.\n"
    )
    print(footprint_table(numbers))
    print(
        f"\nLatency: {options.rate:g} requests/s for {options.seconds:g} s per phase from a separate "
        "process (open loop), after the request mix and a 2 s warm-up.\n"
    )
    print(latency_table(numbers["latency"]))
    print(
        "\nsys.modules: a probe process that imports api.main, serves /readyz and a job with uvicorn, then "
        "lists them; mapped: shared libraries in the real API process's /proc/PID/maps. server: the "
        "API's /metrics histogram for the same requests; CPU busy: all cores, all processes, in the phase."
    )
    if options.json is not None:
        write_json(options.json, machine, {**vars(options), "json": str(options.json)}, [numbers])
        print(f"wrote {options.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
