"""A job row as the API shows it: progress with an ETA, failure, links."""

from __future__ import annotations

from typing import Any

from api.jobs.schemas import JobFailure, JobLinks, JobProgress, JobResource
from api.jobs.specs import submission_of
from persistence.models import Job
from persistence.states import TERMINAL_STATES, FailureReason, JobState

JOBS_PATH = "/v1/jobs"


def job_path(job: Job) -> str:
    return f"{JOBS_PATH}/{job.id}"


def job_resource(job: Job) -> JobResource:
    return JobResource(
        id=job.id,
        state=JobState(job.state),
        terminal=job.state in TERMINAL_STATES,
        phase=job.phase if is_running(job) else None,
        progress=job_progress(job),
        latest_metrics=job.latest_metrics,
        failure=job_failure(job),
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested_at is not None,
        model_id=job.model_id,
        spec=submission_of(job.spec),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
        links=job_links(job),
    )


def job_links(job: Job) -> JobLinks:
    path = job_path(job)
    return JobLinks(
        job=path,
        events=f"{path}/events",
        metrics=f"{path}/metrics",
        cancel=f"{path}/cancel",
        model=f"/v1/models/{job.model_id}" if job.model_id is not None else None,
    )


def job_failure(job: Job) -> JobFailure | None:
    if job.failure_reason is None:
        return None
    try:
        reason = FailureReason(job.failure_reason)
    except ValueError:  # a reason outside the published vocabulary is a bug of ours
        reason = FailureReason.INTERNAL_ERROR
    return JobFailure(reason=reason, message=job.failure_message)


def job_progress(job: Job) -> JobProgress:
    """What the worker's last heartbeat reported (``worker.training.child.progress_payload``)."""
    reported: dict[str, Any] = job.progress or {}
    step = as_int(reported.get("step"))
    total_steps = as_int(reported.get("total_steps"))
    elapsed = as_float(reported.get("elapsed_seconds"))
    running = is_running(job)
    return JobProgress(
        phase=job.phase or reported.get("phase") if running else None,
        epoch=as_int(reported.get("epoch")),
        epochs=as_int(reported.get("epochs")) or as_int(job.spec.get("epochs")),
        step=step,
        total_steps=total_steps,
        fraction=progress_fraction(job.state, step, total_steps),
        elapsed_seconds=elapsed,
        eta_seconds=remaining_seconds(reported, step, total_steps, elapsed) if running else None,
        loss=as_float(reported.get("loss")),
    )


def is_running(job: Job) -> bool:
    """Phase and ETA are shown only then: a re-queued job still carries its last attempt's progress."""
    return job.state in (JobState.RUNNING, JobState.CANCELLING)


def progress_fraction(state: str, step: int | None, total_steps: int | None) -> float | None:
    if state == JobState.SUCCEEDED:
        return 1.0
    if state == JobState.QUEUED and not step:
        return 0.0
    if step is None or not total_steps:
        return None
    return min(step / total_steps, 1.0)


def remaining_seconds(
    reported: dict[str, Any], step: int | None, total_steps: int | None, elapsed: float | None
) -> float | None:
    """The worker's own ETA if it sent one, else the average pace so far times the steps left."""
    explicit = as_float(reported.get("eta_seconds"))
    if explicit is not None:
        return explicit
    if not step or total_steps is None or elapsed is None or elapsed <= 0:
        return None
    return round(elapsed / step * max(total_steps - step, 0), 3)


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
