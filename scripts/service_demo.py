"""The service on the embedded default, end to end: ``make demo`` runs this.

Starts the API (uvicorn) and one worker (Celery, one task at a time, both queues, beat for the reaper) on
SQLite, a local-folder object store and kombu's filesystem broker under ``runs/service-demo/``;
then, as a client would over HTTP: submits a training job on ``shapes``, shows its progress,
asks for explanations of a few test images, saves the heatmap PNGs, and prints how to call the
running API. Ctrl-C stops everything (``--exit`` stops right after the tour).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from tqdm import tqdm

from batchcam import render
from batchcam.data import load_shapes
from persistence.api_keys import create_api_key
from persistence.db import make_engine, make_session_factory, transaction
from persistence.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free TCP port")


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
    )


def api_key(settings: Settings) -> str:
    sessions = make_session_factory(make_engine(settings.resolved_database_url()))
    with transaction(sessions) as session:
        return create_api_key(session, "demo", "service-demo").secret


def keys_command(state: Path) -> str:
    """The shell line that lists this service's keys (the embedded default: no DATABASE_URL)."""
    return f"BATCHCAM_STATE_DIR={shlex.quote(str(state))} {shlex.quote(str(BIN / 'batchcam'))} keys list"


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(client: httpx.Client, processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise SystemExit(f"a service process exited early; see {log}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the API did not become ready in 120 s; see {logs[0]}")


def train(client: httpx.Client, epochs: int) -> dict[str, Any]:
    response = client.post(
        "/v1/jobs", json={"dataset": "shapes", "model": "simple_cnn", "mode": "batchcam", "epochs": epochs}
    )
    response.raise_for_status()
    job = response.json()
    print(f"submitted job {job['id']} (202, Location: {response.headers['location']})")
    with tqdm(total=1.0, unit="", bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}") as bar:
        while not job["terminal"]:
            time.sleep(0.5)
            job = client.get(f"/v1/jobs/{job['id']}").json()
            progress = job["progress"]
            bar.set_description(f"{job['state']} {progress.get('phase') or ''}".strip())
            bar.n = progress.get("fraction") or 0.0
            eta = progress.get("eta_seconds")
            bar.set_postfix_str(
                f"epoch {progress.get('epoch') or '-'}/{progress.get('epochs') or '-'}"
                + (f", ETA {eta:.0f} s" if eta else "")
            )
            bar.refresh()
    if job["state"] != "succeeded":
        raise SystemExit(f"job ended {job['state']}: {job.get('failure')}")
    return job


def explain(client: httpx.Client, model_id: str, out: Path) -> list[Path]:
    test = load_shapes().test
    files = []
    for label in range(test.num_classes):
        index = int((test.labels == label).nonzero()[0])
        png = render.png_bytes(Image.fromarray(test.images[index, 0].numpy()))
        files.append(("files", (f"{test.class_names[label]}.png", png, "image/png")))
    response = client.post(
        f"/v1/models/{model_id}/explanations",
        params={"wait": 30},
        files=files,
        data={"metrics": "deletion,insertion"},
    )
    response.raise_for_status()
    explanation = response.json()
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for item in explanation["items"]:
        heatmap = client.get(
            f"/v1/explanations/{explanation['id']}/heatmaps/{item['index']}.png", params={"scale": 8}
        )
        heatmap.raise_for_status()
        path = out / f"{item['index']}_{item['predicted']['name']}.png"
        path.write_bytes(heatmap.content)
        saved.append(path)
        scores = item["faithfulness"]
        print(
            f"  image {item['index']}: predicted {item['predicted']['name']} → {path}; deletion AUC "
            f"{scores['deletion']['score']:.2f} (random map {scores['deletion']['random']:.2f}, lower is "
            f"better), insertion AUC {scores['insertion']['score']:.2f} (random map "
            f"{scores['insertion']['random']:.2f}, higher is better)"
        )
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "runs" / "service-demo")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--exit", action="store_true", help="stop the service after the tour")
    options = parser.parse_args()

    state = options.dir.resolve() / "state"
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BATCHCAM_STATE_DIR": str(state), "BATCHCAM_REAPER_INTERVAL_SECONDS": "10"}
    for name in ("DATABASE_URL", "BROKER_URL", "OBJECT_STORE_URL", "S3_ENDPOINT_URL"):
        env.pop(name, None)  # the embedded default, whatever this shell exports
    settings = Settings(BATCHCAM_STATE_DIR=state)
    migrate(env)
    key = api_key(settings)
    port = free_port(options.port)
    logs = [options.dir.resolve() / "api.log", options.dir.resolve() / "worker.log"]
    processes = [
        start(
            [str(BIN / "python"), "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port)], env, logs[0]
        ),
        start(
            [
                str(BIN / "celery"),
                "-A",
                "worker.tasks",
                "worker",
                "-Q",
                "train,explain,maintenance",
                "-B",
                "--schedule",
                str(state / "beat-schedule"),
                "--loglevel",
                "INFO",
            ],
            env,
            logs[1],
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            print(f"starting the API on {base} and a worker (logs: {logs[0]}, {logs[1]}) ...")
            wait_ready(client, processes, logs)
            job = train(client, options.epochs)
            model_id = job["links"]["model"].rsplit("/", 1)[-1]
            model = client.get(f"/v1/models/{model_id}").json()
            print(f"model {model_id}: test accuracy {model['summary']['accuracy']:.1%}")
            faithful = model["summary"]["faithfulness"]
            if faithful:
                road = faithful["road_combined"]
                print(
                    f"faithfulness on {faithful['images']} test images: ROAD combined {road['map']:.2f} "
                    f"(random map {road['random']:.2f}; higher is better); figure: {base}/v1/models/"
                    f"{model_id}/figures/faithfulness.png"
                )
            print("explaining one test image per class ...")
            explain(client, model_id, options.dir.resolve() / "heatmaps")
        models = f"{base}/v1/models/{model_id}"
        print(f"""
The service is running at {base} (OpenAPI: {base}/docs). Your API key (tenant "demo"):
  export BATCHCAM_URL={base} BATCHCAM_API_KEY={key}
Dashboard: {base}/dashboard/ (sign in with the API key above; the browser keeps only a cookie)
Try:
  curl -H "Authorization: Bearer $BATCHCAM_API_KEY" {base}/v1/jobs
  curl -H "Authorization: Bearer $BATCHCAM_API_KEY" {models}/cam-prototypes/0.png -o cam0.png
  curl -H "Authorization: Bearer $BATCHCAM_API_KEY" -F files=@some.png "{models}/explanations?wait=10"
or the Python client and its command line (pip install './clients/python[cli]'; both read those two):
  batchcam-client jobs list
  batchcam-client explain {model_id} some.png --out heatmaps/
Keys (batchcam keys list|create|revoke) live in this service's database; reach it with its state folder:
  {keys_command(state)}
Heatmaps: {options.dir.resolve() / "heatmaps"}; service state (SQLite, objects, broker): {state}""")
        if not options.exit:
            print("Ctrl-C stops the service.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
