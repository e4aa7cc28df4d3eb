"""``batchcam-client`` as a user runs it (a subprocess against the real service): JSON output, the
progress bar, heatmaps written by ``explain --out``, one-line errors with exit code 2 for bad input
and 1 for the network, and Ctrl-C that stops watching but leaves the job running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from batchcam_client import Client, JobSpec, JobState
from batchcam_client.cli.explain import unique_stems
from PIL import Image
from service.service_stack import ServiceStack

from client.conftest import TrainedJob, connect

pytestmark = pytest.mark.slow
COMMAND = Path(sys.executable).parent / "batchcam-client"


def run(stack: ServiceStack, key: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATCHCAM_URL": stack.api.base_url, "BATCHCAM_API_KEY": key}
    return subprocess.run([str(COMMAND), *args], capture_output=True, text=True, env=env, timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess[str], code: int, problem: str) -> None:
    assert done.returncode == code, done
    assert done.stderr.startswith(f"error: {problem}") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_get_and_list_print_json(stack: ServiceStack, api_key: str, trained: TrainedJob) -> None:
    got = run(stack, api_key, "jobs", "get", str(trained.job.id), "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["id"] == str(trained.job.id)
    listed = run(stack, api_key, "jobs", "list", "--json", "--limit", "1", "--state", "succeeded")
    assert [job["state"] for job in json.loads(listed.stdout)] == ["succeeded"]
    table = run(stack, api_key, "jobs", "list")
    assert table.returncode == 0 and str(trained.job.id) in table.stdout
    model = run(stack, api_key, "models", "get", str(trained.job.model_id), "--json")
    assert json.loads(model.stdout)["job_id"] == str(trained.job.id)


def test_watch_draws_the_finished_job_and_download_writes_files(
    stack: ServiceStack, api_key: str, trained: TrainedJob, tmp_path: Path
) -> None:
    watched = run(stack, api_key, "jobs", "watch", str(trained.job.id))
    assert watched.returncode == 0, watched.stderr
    assert f"job {trained.job.id} succeeded" in watched.stdout and "epoch 1/1" in watched.stderr
    downloaded = run(stack, api_key, "models", "download", str(trained.job.model_id), "--out", str(tmp_path))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "model.safetensors").stat().st_size > 1000
    assert "test" in json.loads((tmp_path / "report.json").read_text())


def test_explain_writes_heatmaps(
    stack: ServiceStack, api_key: str, trained: TrainedJob, tmp_path: Path
) -> None:
    images = []
    for position in range(2):
        pixels = np.random.default_rng(position).integers(0, 255, (28, 28), dtype=np.uint8)
        images.append(tmp_path / f"in-{position}.png")
        Image.fromarray(pixels).save(images[-1])
    images.append(tmp_path / "many.npz")  # an .npz's images are written as STEM_0, STEM_1
    np.savez(images[-1], images=np.random.default_rng(2).integers(0, 255, (2, 28, 28), dtype=np.uint8))
    out = tmp_path / "out"
    done = run(stack, api_key, "explain", str(trained.job.model_id), *map(str, images), "--out", str(out))
    assert done.returncode == 0, done.stderr
    for stem in ("in-0", "in-1", "many_0", "many_1"):
        assert Image.open(out / f"{stem}_overlay.png").size == (28, 28)
        assert Image.open(out / f"{stem}_raw.png").mode == "L"
        assert np.load(out / f"{stem}.npy").shape == (28, 28)
    assert len(json.loads((out / "predictions.json").read_text())["items"]) == 4


def test_heatmap_stems_number_an_npz_s_images_and_keep_other_names() -> None:
    names = ["a.png", "img[1].png", "x.npz[3]", "x.npz[10]", "", "b.jpg"]
    assert unique_stems(names) == ["a", "img[1]", "x_3", "x_10", "image", "b"]
    assert unique_stems(["a.png", "a.jpg"]) == ["0_a", "1_a"]  # a clash: each prefixed by its position


def test_errors_are_one_line_with_the_exit_code_of_their_kind(
    stack: ServiceStack, api_key: str, tmp_path: Path
) -> None:
    one_error_line(
        run(stack, api_key, "jobs", "get", "0b0e4a52-0000-4000-8000-000000000000"), 2, "job_not_found"
    )
    one_error_line(run(stack, api_key, "jobs", "submit", "--set", "lr=5e16"), 2, "invalid_config")
    one_error_line(run(stack, api_key, "jobs", "submit", "--set", "colour=blue"), 2, "invalid_input")
    one_error_line(run(stack, "bc_nope_nope", "jobs", "list"), 2, "unauthorized")
    one_error_line(run(stack, api_key, "datasets", "upload", str(tmp_path / "none.npz")), 2, "invalid_input")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}"
        one_error_line(run(stack, api_key, "jobs", "list", "--url", unreachable), 1, "transport_error")


def as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a test run started in the background (``cmd &`` in a
    non-interactive shell) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_watching_and_leaves_the_job_running(stack: ServiceStack, tmp_path: Path) -> None:
    key = stack.new_api_key("client-cli-interrupt")
    with connect(stack, key) as client:
        job = client.jobs.submit(JobSpec(dataset="shapes", epochs=200))
    env = {**os.environ, "BATCHCAM_URL": stack.api.base_url, "BATCHCAM_API_KEY": key}
    watching = subprocess.Popen(
        [str(COMMAND), "jobs", "watch", str(job.id)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    try:
        assert watching.stderr is not None
        drawn = ""
        while f"job {str(job.id)[:8]}" not in drawn:  # the bar is drawn: watching has begun
            character = watching.stderr.read(1)
            assert character, f"the command ended before drawing its bar: {drawn!r}"
            drawn += character
        watching.send_signal(signal.SIGINT)
        _, rest = watching.communicate(timeout=30)
        stderr = drawn + rest
        assert watching.returncode == 130, stderr
        assert f"Reattach with: batchcam-client jobs watch {job.id}" in stderr and "Traceback" not in stderr
        with Client(stack.api.base_url, key) as client:
            assert not client.jobs.get(job.id).cancel_requested  # watching stopped, the job did not
    finally:
        watching.kill()
        with Client(stack.api.base_url, key) as client:  # the stack's one worker is needed by the others
            client.jobs.cancel(job.id)
            client.jobs.wait(job.id, timeout=120)


def test_submit_wait_trains_with_a_progress_bar(
    stack: ServiceStack, api_key: str, trained: TrainedJob
) -> None:
    spec = trained.job.spec.model_dump(mode="json")
    options = [
        arg
        for name in ("batch_size", "bn_recalibration_batches", "faithfulness_images")
        for arg in ("--set", f"{name}={spec[name]}")
    ]
    done = run(
        stack, api_key, "jobs", "submit", "--dataset", spec["dataset"], "--epochs", "1", *options, "--wait"
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded: model" in done.stdout and "epoch 1/1" in done.stderr and "eta" in done.stderr
    assert JobState.SUCCEEDED.value in done.stderr
