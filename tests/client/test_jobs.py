"""Training jobs through the client against the real service: submit → events → wait → report and
artifacts, resuming a dropped event stream with Last-Event-ID, cancelling, pages, and a submission
whose answer was lost on the network that, retried with its Idempotency-Key, creates one job."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from batchcam_client import Client, Conflict, JobSpec, JobState, RetryPolicy
from PIL import Image
from service.service_stack import ServiceStack
from service.tcp_proxy import TcpProxy

from client.conftest import TrainedJob, connect
from client.recording import RecordingTransport

pytestmark = pytest.mark.slow
LONG_TRAINING = {"dataset": "shapes", "epochs": 200}  # cancelled long before it could end


def test_a_job_is_followed_live_to_its_model(trained: TrainedJob, client: Client, tmp_path: Path) -> None:
    job, events = trained.job, trained.events
    assert trained.submitted.state == JobState.QUEUED and trained.submitted.spec.epochs == 1
    assert job.state == JobState.SUCCEEDED and job.terminal and job.model_id is not None, job
    states = [event.state for event in events if event.state is not None]
    assert states[0] in (JobState.QUEUED, JobState.RUNNING) and states[-1] == JobState.SUCCEEDED
    assert JobState.RUNNING in states
    assert [event.data["epoch"] for event in events if event.type == "epoch"] == [1]
    stored = [event.id for event in events if event.id is not None]
    assert stored == sorted(set(stored))  # each stored event once, in order
    assert all(event.progress is not None for event in events if event.type == "progress")

    assert [epoch.epoch for epoch in client.jobs.metrics(job.id).epochs] == [1]
    report = client.models.report(job.model_id)
    assert 0 <= report["test"]["accuracy"] <= 1
    model = client.models.get(job.model_id)
    assert model.job_id == job.id and model.input.height == 28 and len(model.classes) == 5
    assert model.id in {listed.id for listed in client.models.list()}
    prototype = client.models.prototype(model.id, 0).image()
    assert prototype.size[0] >= 28
    assert client.models.cam_prototype(model.id, 1).startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(client.models.figure(model.id, "training-curves"))).format == "PNG"
    weights = client.models.download_weights(model.id, tmp_path / "model.safetensors")
    header = weights.read_bytes()
    (length,) = struct.unpack("<Q", header[:8])
    assert "__metadata__" in json.loads(header[8 : 8 + length])  # a safetensors file


def test_a_dropped_event_stream_resumes_after_the_last_event(stack: ServiceStack) -> None:
    """The stream of a job that is still going (its first event, ``queued``, is sent at once) is cut;
    the job is then cancelled, so what follows can only arrive through the resumed stream."""
    key = stack.new_api_key("client-resume")
    recorder = RecordingTransport()
    retry = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=0.5)
    with (
        connect(stack, key) as direct,
        TcpProxy("127.0.0.1", stack.api.port) as proxy,
        Client(f"http://127.0.0.1:{proxy.port}", key, retry=retry, transport=recorder) as client,
    ):
        job = direct.jobs.submit(JobSpec(**LONG_TRAINING))  # type: ignore[arg-type]
        events = client.jobs.events(job.id, timeout=120)
        first = next(events)
        proxy.cut()  # the connection drops mid-stream, the job still queued or running
        proxy.restore()
        direct.jobs.cancel(job.id)
        rest = list(events)
        history = [event.id for event in direct.jobs.events(job.id) if event.id is not None]
    assert first.state == JobState.QUEUED and rest[-1].state == JobState.CANCELLED
    received = [event.id for event in [first, *rest] if event.id is not None]
    assert received == history  # none lost, none repeated
    streams = recorder.sent(f"/v1/jobs/{job.id}/events")
    assert len(streams) >= 2 and "last-event-id" not in streams[0].headers
    assert int(streams[1].headers["last-event-id"]) in received[:-1]


def test_events_start_after_a_given_event_id(client: Client, trained: TrainedJob) -> None:
    history = [event.id for event in client.jobs.events(trained.job.id) if event.id is not None]
    later = [event.id for event in client.jobs.events(trained.job.id, last_event_id=history[1])]
    assert [event_id for event_id in later if event_id is not None] == history[2:]


def test_a_cancelled_job_ends_cancelled(client: Client, trained: TrainedJob) -> None:
    job = client.jobs.submit(JobSpec(**LONG_TRAINING))  # type: ignore[arg-type]
    cancelled = client.jobs.cancel(job.id)
    assert cancelled.cancel_requested and cancelled.state in (JobState.CANCELLED, JobState.CANCELLING)
    ended = client.jobs.wait(job.id, timeout=120)
    assert ended.state == JobState.CANCELLED and ended.model_id is None
    with pytest.raises(Conflict) as finished:
        client.jobs.cancel(trained.job.id)
    assert finished.value.code == "job_already_finished" and finished.value.status == 409
    assert finished.value.request_id


def test_lists_follow_the_cursor_pages(stack: ServiceStack) -> None:
    recorder = RecordingTransport()
    with connect(stack, stack.new_api_key("client-pages"), transport=recorder) as client:
        uploaded = [client.datasets.upload(tiny_npz(seed), filename=f"d{seed}.npz").id for seed in range(2)]
        listed = [dataset for dataset in client.datasets.list(page_size=1) if not dataset.builtin]
    assert [dataset.id for dataset in listed] == uploaded[::-1]  # newest first, each once
    pages = recorder.sent("/v1/datasets")[2:]  # after the uploads: the first page, then one by its cursor
    assert len(pages) == 2 and "cursor" not in pages[0].url.params and "cursor" in pages[1].url.params


def test_a_submission_whose_answer_was_lost_is_retried_into_one_job(stack: ServiceStack) -> None:
    key = stack.new_api_key("client-idempotency")
    retry = RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=0.5)
    recorder = RecordingTransport()
    with (
        TcpProxy("127.0.0.1", stack.api.port, drop_responses=1) as proxy,
        Client(f"http://127.0.0.1:{proxy.port}", key, retry=retry, transport=recorder) as lossy,
    ):
        job = lossy.jobs.submit(JobSpec(**LONG_TRAINING))  # type: ignore[arg-type]
    with connect(stack, key) as client:
        jobs = list(client.jobs.list())
        client.jobs.cancel(job.id)
    assert [listed.id for listed in jobs] == [job.id]  # the retry got the first attempt's job back
    first, retried = recorder.sent("/v1/jobs")
    assert first.headers["idempotency-key"] == retried.headers["idempotency-key"]


def tiny_npz(seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    np.savez(buffer, images=rng.integers(0, 255, (20, 8, 8), dtype=np.uint8), labels=np.arange(20) % 2)
    return buffer.getvalue()
