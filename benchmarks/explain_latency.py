"""End-to-end explanation latency and throughput of the real service, against the library in-process.

Starts the whole stack on this machine: a fresh, migrated Postgres database; a private Redis as the
Celery broker; SeaweedFS (``weed mini``) as the S3 object store, as in production; the API (uvicorn,
one process) and one explain worker (``celery -A worker.tasks worker -Q explain``, one task at a time). A tiny
``simple_cnn`` is trained on ``shapes`` and stored the way a succeeded training job leaves it. After
warm-up requests (the worker's model cache is then warm) it measures, from a client in this process:

* one image per request, ``POST /v1/models/{id}/explanations?wait=…``, one request at a time:
  p50/p90/p99 until the 200 with the finished explanation (multipart PNG upload, and dataset index);
* 256 images in one request (multipart PNGs, and dataset indices): seconds from the POST until the
  explanation has succeeded with its maps stored in S3, as images per second.

Baseline measured in the same run: the library's ``Explainer.explain`` in this process on the same
images (same device choice as the worker), so the ratio column is the service's overhead.

    .venv/bin/python benchmarks/explain_latency.py            # full run (~2 min)
    .venv/bin/python benchmarks/explain_latency.py --quick    # smoke test (< 1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis
import torch
from _timing import TimingPolicy, machine_info, markdown_table, measure, write_json
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the tests' Postgres, SeaweedFS and trained-model helpers

from service.postgres import fresh_database, run_alembic  # noqa: E402
from service.seaweed import SeaweedServer, running_seaweedfs  # noqa: E402
from service.trained_models import TrainedRun, png_of, store_model, train_tiny_run  # noqa: E402

from batchcam.data import make_shapes  # noqa: E402
from batchcam.explain import Explainer  # noqa: E402
from persistence.api_keys import create_api_key  # noqa: E402
from persistence.db import make_session_factory, transaction  # noqa: E402
from persistence.objects import S3ObjectStore, ensure_bucket  # noqa: E402

BIN = Path(sys.executable).parent
BUCKET = "batchcam-bench"
WAIT_SECONDS = 30  # the API's maximum ?wait
BATCH_TARGET_IMAGES_PER_S = 500.0
SINGLE_TARGET_P50_MS = 150.0
IMAGES_SEED = 11  # the uploaded images; training used seeds 1 and 2


@dataclass(frozen=True)
class Settings:
    single: int  # one-image upload requests timed
    single_dataset: int  # one-image dataset-index requests timed
    batch: int  # images per batch request
    batch_trials: int  # batch requests timed, per input kind
    warmup: int  # untimed requests first
    policy: TimingPolicy  # for the in-process baseline
    threads: int | None  # torch threads of the worker and the baseline; None: torch's choice
    broker: str | None  # a Redis URL to use instead of a private redis-server


@dataclass(frozen=True)
class Timed:
    """One request: client-side seconds, and wall-clock instants (same machine, same clock)."""

    client_s: float
    sent: float  # time.time() when the POST started
    answered: float  # time.time() when the finished explanation was in hand
    explanation: dict[str, Any]


@dataclass
class Samples:
    """Per request: the client's seconds, split by the row's created_at and finished_at into
    submit (upload, decoding, checks, inputs to S3, the row), row (queue, worker, maps to S3, the
    result) and answer (?wait noticing the end, the response)."""

    client_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    row_s: list[float] = field(default_factory=list)
    answer_s: list[float] = field(default_factory=list)

    def add(self, timed: Timed) -> None:
        created = datetime.fromisoformat(timed.explanation["created_at"]).timestamp()
        finished = datetime.fromisoformat(timed.explanation["finished_at"]).timestamp()
        self.client_s.append(timed.client_s)
        self.submit_s.append(created - timed.sent)
        self.row_s.append(finished - created)
        self.answer_s.append(timed.answered - finished)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, as ``api_latency.py`` reports it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the stack ------------------------------------------------------------------------------------


@contextlib.contextmanager
def process_group(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group (so the Celery worker goes with all it started), logged."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def private_redis(folder: Path, port: int | None = None) -> Iterator[str]:
    """A throw-away ``redis-server`` (on a free port unless given) keeping nothing on disk: no other
    user's database can be flushed or shared, and a restart loses what it held."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server not found: apt-get install redis-server, or pass --broker URL")
    port = port or free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    log = folder / f"redis-{time.monotonic_ns()}.log"
    with process_group(command, dict(os.environ), log) as process:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start: {tail(log)}")
            time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"


def tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def service_environment(database: str, broker: str, s3: SeaweedServer, state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database,
        "BROKER_URL": broker,
        "OBJECT_STORE_URL": f"s3://{BUCKET}",
        "S3_ENDPOINT_URL": s3.endpoint_url,
        "S3_ACCESS_KEY_ID": s3.access_key_id,
        "S3_SECRET_ACCESS_KEY": s3.secret_access_key,
        "BATCHCAM_STATE_DIR": str(state),
    }


def api_command(port: int) -> list[str]:
    """The API as production runs it (``python -m api.serve``: uvicorn with the header limits)."""
    return [sys.executable, "-m", "api.serve", "--port", str(port), "--log-level", "warning"]


def worker_command(queue: str = "explain") -> list[str]:
    """One Celery worker serving ``queue`` (one task at a time, as configured), quiet."""
    return [
        str(BIN / "celery"),
        "-A",
        "worker.tasks",
        "worker",
        "-Q",
        queue,
        "--hostname",
        f"bench-{queue}@%h",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def wait_ready(client: httpx.Client, api: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise SystemExit(f"the API exited:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"the API did not start:\n{tail(log)}")


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explain:
    """Posts explanation requests for one model and waits for their end."""

    client: httpx.Client
    model_id: uuid.UUID
    worker_log: Path

    def upload(self, pngs: list[bytes]) -> Timed:
        files = [("files", (f"image{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
        return self._post(files=files)

    def dataset(self, indices: list[int]) -> Timed:
        return self._post(json={"dataset": "shapes", "split": "test", "indices": indices})

    def _post(self, **body: Any) -> Timed:
        """From the POST until the succeeded explanation is in hand."""
        path = f"/v1/models/{self.model_id}/explanations"
        sent, start = time.time(), time.perf_counter()
        response = self.client.post(path, params={"wait": WAIT_SECONDS}, **body)
        if response.status_code == 202:  # ?wait ran out (a cold worker): follow the row until it ends
            response = self._follow(response.json()["links"]["explanation"])
        elapsed, answered = time.perf_counter() - start, time.time()
        if response.status_code != 200:
            raise SystemExit(f"POST {path}: {response.status_code} {response.text[:500]}")
        explanation: dict[str, Any] = response.json()
        if explanation["state"] != "succeeded" or explanation["failed_items"]:
            raise SystemExit(f"explanation did not succeed: {explanation}\n{tail(self.worker_log)}")
        return Timed(elapsed, sent, answered, explanation)

    def _follow(self, link: str) -> httpx.Response:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            response = self.client.get(link)
            if response.status_code != 200 or response.json()["terminal"]:
                return response
            time.sleep(0.2)
        raise SystemExit(f"{link} did not end in 180 s; worker log:\n{tail(self.worker_log)}")


def timed(count: int, call: Callable[[int], Timed]) -> Samples:
    samples = Samples()
    for i in range(count):
        samples.add(call(i))
    return samples


# --- the baseline ---------------------------------------------------------------------------------


def in_process_seconds(explainer: Explainer, images: torch.Tensor, policy: TimingPolicy) -> float:
    """Median seconds of ``Explainer.explain`` on images conformed as the worker conforms them."""
    batch = torch.stack([explainer.conform(image) for image in images])
    targets: list[int | None] = [None] * len(batch)
    return measure(lambda: explainer.explain(batch, targets, "gradcam"), explainer.device, policy).median_s


# --- the run --------------------------------------------------------------------------------------


def settings_from(options: argparse.Namespace) -> Settings:
    if options.quick:
        return Settings(
            single=20,
            single_dataset=3,
            batch=options.batch,
            batch_trials=2,
            warmup=3,
            policy=TimingPolicy(warmup=2, min_repeats=5, min_time_s=0.2),
            threads=options.threads,
            broker=options.broker,
        )
    return Settings(
        single=options.requests,
        single_dataset=options.dataset_requests,
        batch=options.batch,
        batch_trials=options.batch_trials,
        warmup=options.warmup,
        policy=TimingPolicy(warmup=3, min_repeats=10, min_time_s=1.0),
        threads=options.threads,
        broker=options.broker,
    )


def test_images(count: int) -> torch.Tensor:
    """``count`` distinct uint8 1×28×28 shapes images, none of them seen in training."""
    return make_shapes(count, seed=IMAGES_SEED).images


@dataclass(frozen=True)
class Backends:
    database: str
    store: S3ObjectStore
    env: dict[str, str]  # the service's environment for them


@contextlib.contextmanager
def backends(folder: Path, name: str, broker: str | None, threads: int | None) -> Iterator[Backends]:
    """A fresh migrated Postgres database, a broker (a private Redis unless given) and SeaweedFS S3
    with its bucket; ``threads``: torch's intra-op threads in the service's processes."""
    with contextlib.ExitStack() as stack:
        progress("starting Postgres database, Redis, SeaweedFS ...")
        database = stack.enter_context(fresh_database(name))
        run_alembic(database, upgrade=True, revision="head")
        broker = broker or stack.enter_context(private_redis(folder))
        (folder / "weed").mkdir()
        s3 = stack.enter_context(running_seaweedfs(folder / "weed"))
        store = S3ObjectStore(BUCKET, connection=s3.connection())
        ensure_bucket(store)
        env = service_environment(database, broker, s3, folder / "state")
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["BATCHCAM_EXPLAIN_TORCH_THREADS"] = str(threads)
        yield Backends(database, store, env)


def tenant_with_model(backend: Backends, run: TrainedRun) -> tuple[str, uuid.UUID]:
    """A new tenant's API key and the trained run stored as its model, as a succeeded job leaves it."""
    sessions = make_session_factory(create_engine(backend.database))
    with transaction(sessions) as session:
        key = create_api_key(session, "bench", f"bench-{uuid.uuid4().hex[:8]}")
    return key.secret, store_model(sessions, backend.store, key.tenant_id, run)


def run_benchmark(settings: Settings, folder: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(backends(folder, "batchcam_bench", settings.broker, settings.threads))
        env = backend.env
        api_port = free_port()
        api_log, worker_log = folder / "api.log", folder / "worker.log"
        api = stack.enter_context(process_group(api_command(api_port), env, api_log))
        stack.enter_context(process_group(worker_command(), env, worker_log))

        progress("training a tiny simple_cnn on shapes (while the API and the worker start) ...")
        run = train_tiny_run(folder / "run")
        secret, model_id = tenant_with_model(backend, run)
        client = stack.enter_context(
            httpx.Client(
                base_url=f"http://127.0.0.1:{api_port}",
                headers={"Authorization": f"Bearer {secret}"},
                timeout=WAIT_SECONDS + 30,
            )
        )
        wait_ready(client, api, api_log)
        explain = Explain(client, model_id, worker_log)

        images = test_images(max(settings.batch, 32))
        pngs = [png_of(image) for image in images]
        progress(f"warm-up: {settings.warmup} request(s) (the first loads the model into the worker) ...")
        for i in range(settings.warmup):
            explain.upload([pngs[i % len(pngs)]])
        explain.dataset([0])
        explain.upload(pngs[: settings.batch])

        progress(f"one image per request: {settings.single} uploads, {settings.single_dataset} indices ...")
        single_upload = timed(settings.single, lambda i: explain.upload([pngs[i % len(pngs)]]))
        single_dataset = timed(settings.single_dataset, lambda i: explain.dataset([i]))
        progress(f"{settings.batch} images per request: {settings.batch_trials} trial(s) of each input ...")
        batch_upload = timed(settings.batch_trials, lambda _: explain.upload(pngs[: settings.batch]))
        batch_dataset = timed(settings.batch_trials, lambda _: explain.dataset(list(range(settings.batch))))
        last = explain.upload(pngs[:1]).explanation
        heatmap = client.get(last["items"][0]["links"]["overlay"])
        if heatmap.status_code != 200 or heatmap.headers["content-type"] != "image/png":
            raise SystemExit(f"the stored heatmap could not be served: {heatmap.status_code}")

        progress("baseline: the library's Explainer in this process ...")
        explainer = Explainer.from_run(run.run_dir)  # the best device, as the worker chooses
        baseline = {
            1: in_process_seconds(explainer, images[:1], settings.policy),
            settings.batch: in_process_seconds(explainer, images[: settings.batch], settings.policy),
        }
        device = str(explainer.device)
    return {
        "device": device,
        "baseline_s": baseline,
        "single": {"PNG upload": single_upload, "dataset index": single_dataset},
        "batch": {"PNG upload": batch_upload, "dataset indices": batch_dataset},
    }


def median_ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.1f}"


def single_table(results: dict[str, Any]) -> str:
    baseline_ms = 1000 * results["baseline_s"][1]
    rows = []
    for name, samples in results["single"].items():
        ms = [1000 * s for s in samples.client_s]
        p50 = percentile(ms, 0.5)
        rows.append(
            [
                f"1 image, {name}",
                str(len(ms)),
                f"{p50:.1f}",
                f"{percentile(ms, 0.9):.1f}",
                f"{percentile(ms, 0.99):.1f}",
                f"{max(ms):.1f}",
                f"{median_ms(samples.submit_s)} / {median_ms(samples.row_s)} / {median_ms(samples.answer_s)}",
                f"{baseline_ms:.2f}",
                f"{p50 / baseline_ms:.1f}×",
                "met" if p50 <= SINGLE_TARGET_P50_MS else "not met",
            ]
        )
    headers = [
        "request",
        "requests",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "submit / row / answer ms",
        "in-process ms",
        "p50 ÷ in-process",
        f"p50 ≤ {SINGLE_TARGET_P50_MS:.0f} ms",
    ]
    return markdown_table(headers, rows)


def batch_table(results: dict[str, Any], batch: int) -> str:
    baseline_s = results["baseline_s"][batch]
    rows = []
    for name, samples in results["batch"].items():
        median_s = statistics.median(samples.client_s)
        rate = batch / median_s
        rows.append(
            [
                f"{batch} images, {name}",
                str(len(samples.client_s)),
                f"{1000 * median_s:.0f}",
                f"{1000 * min(samples.client_s):.0f}",
                f"{rate:,.0f}",
                f"{median_ms(samples.submit_s)} / {median_ms(samples.row_s)} / {median_ms(samples.answer_s)}",
                f"{1000 * baseline_s:.1f}",
                f"{batch / baseline_s:,.0f}",
                f"{median_s / baseline_s:.1f}×",
                "met" if rate >= BATCH_TARGET_IMAGES_PER_S else "not met",
            ]
        )
    headers = [
        "request",
        "trials",
        "median ms",
        "best ms",
        "images/s",
        "submit / row / answer ms",
        "in-process ms",
        "in-process images/s",
        "median ÷ in-process",
        f"≥ {BATCH_TARGET_IMAGES_PER_S:.0f} images/s",
    ]
    return markdown_table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="one-image upload requests timed")
    parser.add_argument("--dataset-requests", type=int, default=20, help="one-image dataset requests timed")
    parser.add_argument("--batch", type=int, default=256, help="images in one batch request")
    parser.add_argument("--batch-trials", type=int, default=5, help="batch requests timed, per input kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed one-image requests first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads: worker and baseline")
    parser.add_argument("--broker", default=None, help="a Redis URL (default: a private redis-server)")
    parser.add_argument("--quick", action="store_true", help="short run: 20 one-image requests")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write raw results")
    options = parser.parse_args()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    settings = settings_from(options)

    machine = machine_info()  # before the stack starts: its load average is the idle one
    with tempfile.TemporaryDirectory(prefix="batchcam-explain-bench-") as folder:
        results = run_benchmark(settings, Path(folder))
    load_after = os.getloadavg()[0]

    print(machine.header())
    print(
        "Stack: uvicorn API (1 process) + 1 Celery explain worker (one task at a time, "
        f"device {results['device']}), Postgres and Redis on localhost, SeaweedFS S3 (weed mini); "
        f"the client (this process) sends one request at a time with ?wait={WAIT_SECONDS}. "
        f"Load avg {load_after:.2f} at the end.\n"
    )
    print(single_table(results))
    print()
    print(batch_table(results, settings.batch))
    print()
    print(
        "Times run from the POST until the client holds the succeeded explanation, its maps stored in S3 "
        "(images/s: batch size ÷ median). Split at the row's created_at and finished_at (medians): "
        "submit = upload, decoding, checks, inputs to S3, the row; row = queue, worker pick-up, inputs "
        "from S3 (or the dataset built), CAMs, maps to S3, the result recorded; answer = ?wait's "
        "polling (every 5 ms at first, then a tenth of the time waited so far, at most 250 ms) "
        "noticing the end, and the response. "
        "in-process: the library's Explainer.explain on the same images in this process (median of "
        f"≥ {settings.policy.min_repeats} calls)."
    )
    if options.json is not None:
        raw = {
            "device": results["device"],
            "baseline_s": results["baseline_s"],
            **{
                f"{kind}/{name}": asdict(samples)
                for kind in ("single", "batch")
                for name, samples in results[kind].items()
            },
        }
        write_json(options.json, machine, vars(options) | {"json": str(options.json)}, [raw])


if __name__ == "__main__":
    main()
