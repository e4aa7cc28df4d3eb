"""Training jobs: ``/v1/jobs``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from batchcam_client.calls import Call
from batchcam_client.operations.common import Id, page_params, parsed, segment
from batchcam_client.resources.base import Page
from batchcam_client.resources.jobs import Job, JobMetrics, JobState
from batchcam_client.spec import JobSpec


def submit(spec: JobSpec) -> Call[Job]:
    return Call("POST", "/v1/jobs", parsed(Job), json=spec.body(), submits=True)


def get(job_id: Id) -> Call[Job]:
    return Call("GET", f"/v1/jobs/{segment(job_id)}", parsed(Job))


def page(state: Iterable[JobState | str] | None = None, limit: int = 50) -> Call[Page[Job]]:
    states = [JobState(value).value for value in state or ()]
    return Call("GET", "/v1/jobs", parsed(Page[Job]), params=page_params(limit, state=states))


def cancel(job_id: Id) -> Call[Job]:
    return Call("POST", f"/v1/jobs/{segment(job_id)}/cancel", parsed(Job))


def metrics(job_id: Id) -> Call[JobMetrics]:
    return Call("GET", f"/v1/jobs/{segment(job_id)}/metrics", parsed(JobMetrics))


def events(job_id: Id, headers: Mapping[str, str]) -> Call[None]:
    """The stream's request (read line by line by the transports, never parsed whole)."""
    return Call(
        "GET",
        f"/v1/jobs/{segment(job_id)}/events",
        lambda _: None,
        headers={"Accept": "text/event-stream", **headers},
    )
