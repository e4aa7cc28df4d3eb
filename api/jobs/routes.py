"""Training jobs: submit, list, read, metrics history, cancel. (The event stream: ``events``.)"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from api.context import ApiContext, Context
from api.http.auth import Caller
from api.http.errors import ProblemError
from api.http.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    IdempotentRequest,
    StoredResponse,
    answer_once,
    record_response,
    stored_json_response,
)
from api.http.json_bodies import CappedJsonRoute
from api.http.openapi import LOCATION_HEADER, RETRY_AFTER_HEADER, problem_responses
from api.http.pages import PageLinks
from api.http.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    decode_cursor,
    newest_first_page,
    next_page_link,
    split_page,
)
from api.jobs.schemas import EpochRecord, JobMetricsHistory, JobPage, JobResource, JobSubmission
from api.jobs.specs import ValidatedSubmission, validated_submission
from api.jobs.views import JOBS_PATH, job_path, job_resource
from api.ownership import owned_job
from persistence.db import transaction
from persistence.jobs.leases import record_event, request_cancel
from persistence.models import Job, JobEpoch
from persistence.states import JobState
from persistence.wakeups import send_after_commit

SUBMIT_OPERATION = "POST /v1/jobs"
POLL_AFTER_SECONDS = "2"
CANCEL_REFUSED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED})

router = APIRouter(prefix=JOBS_PATH, tags=["jobs"], route_class=CappedJsonRoute)


@router.post(
    "",
    status_code=202,
    response_model=JobResource,
    summary="Submit a training job",
    responses={
        202: {
            "description": "Queued.",
            "headers": {"Location": LOCATION_HEADER, "Retry-After": RETRY_AFTER_HEADER},
        },
        **problem_responses(400, 401, 409, 413, 422, 503),
    },
)
def submit_job(
    submission: JobSubmission, caller: Caller, context: Context, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    with context.sessions() as session:
        submitted = validated_submission(session, caller.tenant_id, submission)
    request = IdempotentRequest(
        caller.tenant_id,
        idempotency_key,
        SUBMIT_OPERATION,
        submission.model_dump(mode="json", exclude_unset=True),
    )
    response, replayed = answer_once(
        context.sessions,
        request,
        context.clock(),
        lambda claim: create_job(context, caller.tenant_id, submitted, claim),
    )
    if not replayed:
        job_id = uuid.UUID(response.body["id"])
        send_after_commit(partial(context.enqueue_training, job_id), f"job {job_id}")
    return stored_json_response(response, replayed=replayed)


def create_job(
    context: ApiContext, tenant_id: uuid.UUID, submitted: ValidatedSubmission, claim: IdempotencyClaim | None
) -> StoredResponse:
    """Insert the job (and its idempotent response) in one transaction; return what to answer."""
    with transaction(context.sessions) as session:
        job = Job(
            tenant_id=tenant_id,
            spec=submitted.spec,
            state=JobState.QUEUED,
            progress={},
            max_attempts=context.settings.max_attempts,
        )
        session.add(job)
        session.flush()
        record_event(session, job.id, "state", state=JobState.QUEUED)
        for message in submitted.warnings:
            record_event(session, job.id, "warning", message=message)
        response = StoredResponse(
            status=202,
            body=job_resource(job).model_dump(mode="json"),
            headers={"Location": job_path(job), "Retry-After": POLL_AFTER_SECONDS},
        )
        if claim is not None:
            record_response(session, claim, response)
    return response


@router.get(
    "", response_model=JobPage, summary="List jobs, newest first", responses=problem_responses(400, 401, 422)
)
def list_jobs(
    caller: Caller,
    context: Context,
    state: Annotated[
        list[JobState] | None, Query(description="Only jobs in these states (repeatable).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="links.next of the previous page.")
    ] = None,
) -> JobPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(Job).where(Job.tenant_id == caller.tenant_id)
    if state:
        query = query.where(Job.state.in_([s.value for s in state]))
    with context.sessions() as session:
        rows = list(
            session.scalars(newest_first_page(query, Job.created_at, Job.id, after=after, limit=limit))
        )
    page, next_cursor = split_page(rows, limit, lambda job: Cursor(job.created_at, job.id))
    return JobPage(
        items=[job_resource(job) for job in page],
        next_cursor=next_cursor,
        links=PageLinks(
            next=next_page_link(JOBS_PATH, next_cursor, limit, [("state", s.value) for s in state or []])
        ),
    )


@router.get(
    "/{job_id}", response_model=JobResource, summary="A job", responses=problem_responses(401, 404, 422)
)
def get_job(job_id: uuid.UUID, caller: Caller, context: Context) -> JobResource:
    with context.sessions() as session:
        return job_resource(owned_job(session, caller.tenant_id, job_id))


@router.get(
    "/{job_id}/metrics",
    response_model=JobMetricsHistory,
    summary="A job's per-epoch metrics",
    responses=problem_responses(401, 404, 422),
)
def get_job_metrics(job_id: uuid.UUID, caller: Caller, context: Context) -> JobMetricsHistory:
    with context.sessions() as session:
        owned_job(session, caller.tenant_id, job_id)
        epochs = session.scalars(select(JobEpoch).where(JobEpoch.job_id == job_id).order_by(JobEpoch.epoch))
        records = [EpochRecord(epoch=e.epoch, recorded_at=e.recorded_at, metrics=e.metrics) for e in epochs]
    return JobMetricsHistory(job_id=job_id, epochs=records)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=JobResource,
    summary="Cancel a job: a queued job at once, a running one when its worker stops (cancelling)",
    responses=problem_responses(401, 404, 409, 422),
)
def cancel_job(job_id: uuid.UUID, caller: Caller, context: Context) -> JobResource:
    with transaction(context.sessions) as session:
        job = owned_job(session, caller.tenant_id, job_id, for_update=True)  # the worker's finish waits
        if job.state in CANCEL_REFUSED_STATES:
            raise ProblemError(409, "job_already_finished", f"job {job_id} already ended {job.state}")
        request_cancel(session, job, context.clock())
    with context.sessions() as session:
        return job_resource(owned_job(session, caller.tenant_id, job_id))
