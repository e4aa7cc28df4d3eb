"""``jobs.wait`` when the event stream cannot be kept up: it falls back to polling the job, and its
timeout ends the wait (not the job). A scripted local server plays the service, answering with a
real job's JSON as the service sent it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from batchcam_client import Client, JobState, RetryPolicy, WaitTimeout

from client.conftest import TrainedJob
from client.scripted_server import Answer, problem, scripted_server

pytestmark = pytest.mark.slow
QUICK = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def job_json(trained: TrainedJob, **changes: Any) -> dict[str, Any]:
    return {**trained.job.model_dump(mode="json"), **changes}


def test_wait_polls_when_the_stream_keeps_failing(trained: TrainedJob) -> None:
    unavailable = problem(503, "service_unavailable", **{"Retry-After": "0"})
    answers = [unavailable] * QUICK.max_attempts + [Answer(200, job_json(trained))]
    with scripted_server(*answers) as (url, script), Client(url, "bc_k_s", retry=QUICK) as client:
        job = client.jobs.wait(trained.job.id, timeout=30)
    assert job.state == JobState.SUCCEEDED and job.id == trained.job.id
    paths = [seen.path for seen in script.seen]
    assert paths == [f"/v1/jobs/{trained.job.id}/events"] * QUICK.max_attempts + [
        f"/v1/jobs/{trained.job.id}"
    ]


def test_wait_gives_up_after_its_timeout(trained: TrainedJob) -> None:
    unavailable = problem(503, "service_unavailable", **{"Retry-After": "0"})
    running = Answer(200, job_json(trained, state="running", terminal=False, finished_at=None))
    answers = [unavailable] * QUICK.max_attempts + [running]
    started = time.monotonic()
    with (
        scripted_server(*answers) as (url, _),
        Client(url, "bc_k_s", retry=QUICK, poll_interval=0.2) as client,
        pytest.raises(WaitTimeout, match="has not ended after 1 s"),
    ):
        client.jobs.wait(trained.job.id, timeout=1)
    assert time.monotonic() - started < 3
