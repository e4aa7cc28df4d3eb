"""Explain throughput under concurrent load: the service against the bare peer, in one run.

Starts the stack of ``explain_latency.py`` (fresh Postgres database, private Redis, SeaweedFS S3, one
uvicorn API process or ``--api-processes N``, one Celery explain worker) and, beside it, the bare
peer ``peer_gradcam.py`` (one uvicorn process, pytorch-grad-cam, same weights). Then, for each
number of clients, every client sends one-image requests back to back for the given time
(``_load_client``: keep-alive connections, request bytes built once):

* service: ``POST /v1/models/{id}/explanations?wait=30`` (multipart PNG), counted when the 200 with
  the succeeded explanation arrives;
* peer: ``POST /explain`` (multipart PNG), counted when its 200 with the CAM arrives.

Also measured in the same run: a 256-image request through the service (256 PNG parts, then the
same images as one ``.npz``) against the library's ``Explainer.explain`` in this process, the
in-process ``Explainer`` at the client counts as batch sizes, and how far the peer's CAM is from the
service's for the same image.

    .venv/bin/python benchmarks/explain_load.py                 # 30 s per cell (~6 min)
    .venv/bin/python benchmarks/explain_load.py --seconds 5     # a quicker look
    .venv/bin/python benchmarks/explain_load.py --api-processes 2 --clients 16 64
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _cpu
import httpx
import numpy as np
import torch
from _load_client import LoadResult, http_request, multipart, run_load
from _timing import TimingPolicy, machine_info, markdown_table, measure
from explain_latency import (
    BIN,
    REPO,
    api_command,
    backends,
    free_port,
    process_group,
    progress,
    tail,
    tenant_with_model,
    test_images,
    wait_ready,
    worker_command,
)

# explain_latency put tests/ on the path: the stack reuses the tests' Postgres, S3 and model helpers.
from service.trained_models import png_of, train_tiny_run

from batchcam.explain import Explainer

WAIT_SECONDS = 30
TARGET_SEQUENTIAL_RATIO = 1.5  # service p50 ÷ peer p50, one client
TARGET_THROUGHPUT_RATIO = 2.0  # service ÷ peer at 16 and 64 clients
TARGET_64_PER_S, TARGET_64_P99_MS, TARGET_1_P50_MS = 300.0, 500.0, 15.0
TARGET_BATCH_IMAGES_PER_S, TARGET_BATCH_SHARE = 2000.0, 0.75


@dataclass(frozen=True)
class Systems:
    service_port: int
    peer_port: int
    service_request: bytes
    peer_request: bytes


@contextlib.contextmanager
def running_stack(folder: Path, threads: int | None, api_processes: int = 1) -> Iterator[dict[str, Any]]:
    """The service, the peer, a trained model in both, and an authorised client."""
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(backends(folder, "batchcam_load", None, threads))
        env = backend.env
        progress("training a tiny simple_cnn on shapes ...")
        run = train_tiny_run(folder / "run")
        api_port, peer_port = free_port(), free_port()
        api_log, worker_log, peer_log = folder / "api.log", folder / "worker.log", folder / "peer.log"
        workers = ["--workers", str(api_processes)] if api_processes > 1 else []
        api = stack.enter_context(process_group([*api_command(api_port), *workers], env, api_log))
        worker = stack.enter_context(process_group(worker_command(), env, worker_log))
        peer_command = [str(BIN / "uvicorn"), "peer_gradcam:app", "--app-dir", str(REPO / "benchmarks")]
        peer_env = {**env, "PEER_RUN_DIR": str(run.run_dir)}
        peer = stack.enter_context(
            process_group(
                [*peer_command, "--port", str(peer_port), "--log-level", "warning"], peer_env, peer_log
            )
        )
        secret, model_id = tenant_with_model(backend, run)
        client = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{api_port}",
                headers={"Authorization": f"Bearer {secret}"},
                timeout=WAIT_SECONDS + 30,
            )
        )
        wait_ready(client, api, api_log)
        peer_client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{peer_port}", timeout=60))
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if peer_client.get("/docs").status_code == 200:
                    break
            if peer.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the peer did not start:\n{tail(peer_log)}")
            time.sleep(0.3)
        try:
            yield {
                "run": run,
                "model_id": model_id,
                "secret": secret,
                "client": client,
                "peer_client": peer_client,
                "ports": (api_port, peer_port),
                "worker_log": worker_log,
                "pids": {"API": api.pid, "worker": worker.pid, "peer": peer.pid},
            }
        except BaseException:  # what the servers said, before their folder goes
            for log in (api_log, worker_log, peer_log):
                progress(f"--- {log.name}:\n{tail(log)}")
            raise


def requests_for(stack: dict[str, Any], png: bytes) -> Systems:
    content_type, body = multipart("files", "image.png", png, "image/png")
    api_port, peer_port = stack["ports"]
    service = http_request(
        "POST",
        f"/v1/models/{stack['model_id']}/explanations?wait={WAIT_SECONDS}",
        {"Authorization": f"Bearer {stack['secret']}", "Content-Type": content_type},
        body,
    )
    peer_type, peer_body = multipart("file", "image.png", png, "image/png")
    peer = http_request("POST", "/explain", {"Content-Type": peer_type}, peer_body)
    return Systems(api_port, peer_port, service, peer)


def cam_difference(stack: dict[str, Any], png: bytes) -> float:
    """Largest |service CAM − peer CAM| for one image (both answer the predicted class)."""
    files = [("files", ("image.png", png, "image/png"))]
    path = f"/v1/models/{stack['model_id']}/explanations"
    done = stack["client"].post(path, params={"wait": WAIT_SECONDS}, files=files).json()
    service = np.load(io.BytesIO(stack["client"].get(done["items"][0]["links"]["array"]).content))
    peer = stack["peer_client"].post("/explain", files=[("file", ("image.png", png, "image/png"))]).json()
    return float(np.abs(service - np.asarray(peer["cam"], dtype=np.float32)).max())


def npz_of(images: torch.Tensor) -> bytes:
    """The images as one .npz (``images``: uint8 N×H×W), as a numpy user sends a batch."""
    buffer = io.BytesIO()
    np.savez(buffer, images=images[:, 0].numpy())
    return buffer.getvalue()


def batch_request_seconds(
    stack: dict[str, Any], files: list[tuple[str, tuple[str, bytes, str]]], trials: int
) -> list[float]:
    """``?wait`` requests of these multipart files, one after another: each one's seconds."""
    path = f"/v1/models/{stack['model_id']}/explanations"
    seconds = []
    for _ in range(trials):
        started = time.perf_counter()
        response = stack["client"].post(path, params={"wait": WAIT_SECONDS}, files=files)
        if response.status_code != 200 or response.json()["state"] != "succeeded":
            raise SystemExit(f"a large request did not succeed: {response.text[:300]}")
        seconds.append(time.perf_counter() - started)
    return seconds


def in_process_per_s(explainer: Explainer, images: torch.Tensor, batch: int) -> float:
    conformed = torch.stack([explainer.conform(image) for image in images[:batch]])
    policy = TimingPolicy(warmup=2, min_repeats=5, min_time_s=0.5)
    median = measure(lambda: explainer.explain(conformed, [None] * batch), explainer.device, policy).median_s
    return batch / median


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of every process in the comparison, by role."""
    return {
        **{role: _cpu.tree(pid) for role, pid in pids.items()},
        "Postgres": _cpu.named("postgres"),
        "Redis": _cpu.named("redis-server"),
        "client": _cpu.this_process(),
    }


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], result: LoadResult
) -> dict[str, float]:
    done = max(len(result.latencies_s), 1)
    return {role: 1000 * (after[role] - before[role]) / done for role in before}


def cpu_table(cpu: dict[int, tuple[dict[str, float], dict[str, float]]]) -> str:
    roles = ["API", "worker", "Postgres", "Redis", "client"]
    rows = []
    for clients, (service, peer) in cpu.items():
        total = sum(service[role] for role in roles[:-1])
        rows.append(
            [str(clients), *(f"{service[role]:.1f}" for role in roles), f"{total:.1f}",
             f"{peer['peer']:.1f}", f"{peer['client']:.1f}", f"{total / max(peer['peer'], 1e-9):.1f}×"]
        )  # fmt: skip
    headers = [
        "clients",
        *(f"service {role} ms" for role in roles),
        "service total (no client) ms",
        "peer server ms",
        "peer client ms",
        "service ÷ peer CPU",
    ]
    return markdown_table(headers, rows)


def load_table(cells: dict[int, tuple[LoadResult, LoadResult]], in_process: dict[int, float]) -> str:
    rows = []
    for clients, (service, peer) in cells.items():
        ratio = service.throughput / peer.throughput if peer.throughput else float("nan")
        rows.append(
            [
                str(clients),
                f"{service.throughput:,.1f}",
                f"{service.percentile_ms(0.5):.1f} / {service.percentile_ms(0.99):.1f}",
                f"{peer.throughput:,.1f}",
                f"{peer.percentile_ms(0.5):.1f} / {peer.percentile_ms(0.99):.1f}",
                f"{ratio:.2f}×",
                f"{service.percentile_ms(0.5) / peer.percentile_ms(0.5):.2f}×",
                f"{in_process[clients]:,.0f}",
                f"{service.throughput / in_process[clients]:.2f}",
                ", ".join(f"{k}: {v}" for k, v in {**service.errors, **peer.errors}.items()) or "none",
            ]
        )
    headers = [
        "clients",
        "service req/s",
        "service p50 / p99 ms",
        "peer req/s",
        "peer p50 / p99 ms",
        "service ÷ peer req/s",
        "service ÷ peer p50",
        "in-process images/s (batch = clients)",
        "service ÷ in-process",
        "errors",
    ]
    return markdown_table(headers, rows)


def verdicts(
    cells: dict[int, tuple[LoadResult, LoadResult]], batch_rates: dict[str, float], in_process_rate: float
) -> str:
    lines = []
    if 1 in cells:
        service, peer = cells[1]
        ratio = service.percentile_ms(0.5) / peer.percentile_ms(0.5)
        lines.append(f"1 client: service p50 ÷ peer p50 = {ratio:.2f} (target ≤ {TARGET_SEQUENTIAL_RATIO})")
        lines.append(
            f"1 client: service p50 {service.percentile_ms(0.5):.1f} ms (target ≤ {TARGET_1_P50_MS:.0f})"
        )
    for clients in (16, 64):
        if clients in cells:
            service, peer = cells[clients]
            ratio = service.throughput / peer.throughput
            target = f"target ≥ {TARGET_THROUGHPUT_RATIO}"
            lines.append(f"{clients} clients: service ÷ peer throughput = {ratio:.2f} ({target})")
    if 64 in cells:
        service = cells[64][0]
        lines.append(
            f"64 clients: {service.throughput:.0f} explanations/s (target ≥ {TARGET_64_PER_S:.0f}), "
            f"p99 {service.percentile_ms(0.99):.0f} ms (target ≤ {TARGET_64_P99_MS:.0f})"
        )
    for form, rate in batch_rates.items():
        lines.append(
            f"256-image request as {form}: {rate:,.0f} images/s (target ≥ {TARGET_BATCH_IMAGES_PER_S:,.0f}), "
            f"{rate / in_process_rate:.2f} of in-process (target ≥ {TARGET_BATCH_SHARE})"
        )
    return "\n".join(f"- {line}" for line in lines)


def worker_threads(threads: int | None) -> str:
    """The explain worker's torch threads: the option's, else its settings' (default 1)."""
    return str(threads) if threads is not None else os.environ.get("BATCHCAM_EXPLAIN_TORCH_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 16, 64])
    parser.add_argument("--seconds", type=float, default=30.0, help="per cell (system × clients)")
    parser.add_argument("--batch", type=int, default=256, help="images in the large request")
    parser.add_argument("--batch-trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of worker, peer, baseline")
    parser.add_argument("--api-processes", type=int, default=1, help="uvicorn worker processes of the API")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write raw results")
    options = parser.parse_args()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    machine = machine_info()
    with (
        tempfile.TemporaryDirectory(prefix="batchcam-load-bench-") as folder,
        running_stack(Path(folder), options.threads, options.api_processes) as stack,
    ):
        images = test_images(max(options.batch, 64))
        pngs = [png_of(image) for image in images]
        systems = requests_for(stack, pngs[0])
        progress("warming up both systems ...")
        run_load(systems.service_port, systems.service_request, 4, 3.0, check=b'"succeeded"')
        run_load(systems.peer_port, systems.peer_request, 4, 3.0)
        difference = cam_difference(stack, pngs[0])
        cells: dict[int, tuple[LoadResult, LoadResult]] = {}
        cpu: dict[int, tuple[dict[str, float], dict[str, float]]] = {}
        for clients in options.clients:
            progress(f"{clients} client(s), {options.seconds:.0f} s each: service, then peer ...")
            before = cpu_now(stack["pids"])
            service = run_load(
                systems.service_port, systems.service_request, clients, options.seconds, check=b'"succeeded"'
            )
            middle = cpu_now(stack["pids"])
            peer = run_load(systems.peer_port, systems.peer_request, clients, options.seconds)
            after = cpu_now(stack["pids"])
            cells[clients] = (service, peer)
            cpu[clients] = (cpu_per_request(before, middle, service), cpu_per_request(middle, after, peer))
        progress(f"{options.batch}-image requests ...")
        png_files = [("files", (f"image{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
        batch_seconds = batch_request_seconds(stack, png_files[: options.batch], options.batch_trials)
        npz_file = [("files", ("images.npz", npz_of(images[: options.batch]), "application/octet-stream"))]
        npz_seconds = batch_request_seconds(stack, npz_file, options.batch_trials)
        progress("in-process Explainer ...")
        explainer = Explainer.from_run(stack["run"].run_dir)
        in_process = {n: in_process_per_s(explainer, images, n) for n in {*options.clients, options.batch}}
    batch_rate = options.batch / statistics.median(batch_seconds)
    batch_share = batch_rate / in_process[options.batch]
    npz_rate = options.batch / statistics.median(npz_seconds)
    print(machine.header())
    print(
        f"Stack: uvicorn API ({options.api_processes} process(es)) + 1 Celery explain worker (one task at "
        f"a time, {worker_threads(options.threads)} torch thread(s)), Postgres, "
        "Redis, SeaweedFS S3 on localhost; the peer: one uvicorn process, FastAPI + pytorch-grad-cam on "
        f"the same weights. Load: N keep-alive clients in this process, one 1-image request after another, "
        f"{options.seconds:.0f} s per cell. "
        f"Largest |service CAM − peer CAM| on one image: {difference:.1e}.\n"
    )
    print(load_table(cells, in_process))
    print()
    print("CPU per completed request (ms), by process, from /proc:\n")
    print(cpu_table(cpu))
    print()
    print(
        f"{options.batch}-image request (multipart PNGs, ?wait): "
        f"median {1000 * statistics.median(batch_seconds):.0f} ms "
        f"over {len(batch_seconds)} trials = {batch_rate:,.0f} images/s; in-process Explainer on the same "
        f"{options.batch} images: {in_process[options.batch]:,.0f} images/s; ratio {batch_share:.2f}. "
        f"The same images as one .npz file: median {1000 * statistics.median(npz_seconds):.0f} ms = "
        f"{npz_rate:,.0f} images/s; ratio {npz_rate / in_process[options.batch]:.2f}.\n"
    )
    rates = {"PNG parts": batch_rate, "one .npz": npz_rate}
    print(verdicts(cells, rates, in_process[options.batch]))
    if options.json is not None:
        raw = {
            "machine": machine.header(),
            "cells": {
                str(clients): {
                    name: {
                        "throughput": result.throughput,
                        "latencies_s": result.latencies_s,
                        "errors": result.errors,
                    }
                    for name, result in zip(("service", "peer"), pair, strict=True)
                }
                for clients, pair in cells.items()
            },
            "batch_seconds": batch_seconds,
            "npz_batch_seconds": npz_seconds,
            "in_process_images_per_s": {str(k): v for k, v in in_process.items()},
            "cam_difference": difference,
        }
        options.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
