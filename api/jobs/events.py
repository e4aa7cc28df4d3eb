"""``GET /v1/jobs/{id}/events``: a job's history as Server-Sent Events, live until it ends."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext, Context
from api.http.auth import Caller
from api.http.decimals import BIGINT_MAX, decimal_at_most, is_decimal
from api.http.errors import ProblemError
from api.http.openapi import problem_responses
from api.http.sse import MEDIA_TYPE, STREAM_HEADERS, EventBatch, Source, StreamEvent, event_stream
from api.jobs.views import JOBS_PATH, is_running, job_progress
from api.ownership import owned_job
from persistence.api_keys import api_key_is_active
from persistence.models import Job, JobEvent
from persistence.notifications import Channel
from persistence.states import TERMINAL_STATES

EVENTS_PER_READ = 500

router = APIRouter(prefix=JOBS_PATH, tags=["jobs"])

STORED_EVENT_TYPES = ["state", "epoch", "checkpoint", "warning"]
LIVE_EVENT_TYPES = ["progress", "unauthorized"]
STREAM_DESCRIPTION = (
    "Server-Sent Events (text/event-stream): a `retry:` line first, then events, each an optional "
    "`id`, an `event` type and one `data:` line holding a JSON object with the job id and the event's "
    "fields; comment lines (`: keep-alive`) while nothing happens. Stored events (state, epoch, "
    "checkpoint, warning) have an `id` (resume with `Last-Event-ID`) and an `at` time. While the job "
    "runs, `progress` events (no `id`: not replayed) carry the job's `progress` object whenever the "
    "worker reports new progress. The stream ends after the event that puts the job in a terminal "
    "state, or after an `unauthorized` event (no `id`) once the API key has been revoked."
)
EVENT_DATA_SCHEMA = {
    "type": "object",
    "required": ["job_id"],
    "properties": {"job_id": {"type": "string", "format": "uuid"}, "at": {"type": "string"}},
    "additionalProperties": True,
}
# One event, as OpenAPI 3.2 models an event stream (before 3.2, ``schema`` describes each event).
STREAM_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Stored events only."},
        "event": {"type": "string", "enum": STORED_EVENT_TYPES + LIVE_EVENT_TYPES},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": EVENT_DATA_SCHEMA,
        },
        "retry": {"type": "integer", "minimum": 0, "description": "Sent once, first."},
    },
}
STREAM_CONTENT = {MEDIA_TYPE: {"schema": STREAM_EVENT_SCHEMA}}


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    summary="Stream a job's events (SSE) until it ends",
    responses={
        200: {"description": STREAM_DESCRIPTION, "content": STREAM_CONTENT},
        **problem_responses(400, 401, 404, 422),
    },
)
async def stream_job_events(
    job_id: uuid.UUID,
    caller: Caller,
    context: Context,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description=f"Resume after this event id (0 to {BIGINT_MAX}); empty or absent: from the start.",
            json_schema_extra={"pattern": "^[0-9]*$"},
        ),
    ] = None,
) -> StreamingResponse:
    after = parse_last_event_id(last_event_id)
    await run_in_threadpool(check_visible, context, caller.tenant_id, job_id)  # 404 before streaming

    def fetch_after(event_id: int) -> EventBatch:
        return read_events(context.sessions, job_id, event_id)

    def access_ended() -> StreamEvent | None:
        with context.sessions() as session:
            if api_key_is_active(session, caller.key_id):
                return None
        return key_revoked_event(job_id)

    stream = event_stream(
        fetch_after,
        after=after,
        timings=context.stream_timings,
        is_last=ends_the_job,
        access_ended=access_ended,
        source=Source(context.changes, Channel.JOB_CHANGED, str(job_id)),
    )
    return StreamingResponse(stream, media_type=MEDIA_TYPE, headers=STREAM_HEADERS)


def parse_last_event_id(value: str | None) -> int:
    """The id to resume after: absent or empty is the beginning; anything but an id this stream could
    have sent is a 400 before the stream starts.

    Refused rather than ignored (the SSE spec leaves the server's reading to the server): a browser's
    EventSource only echoes ids the stream sent, so an unusable one comes from a hand-made client, and
    it should learn so. A 400 answer is also what stops EventSource: a non-200 answer fails the
    connection for good, while a stream that starts and then breaks (as an id past bigint once did,
    in the database) makes it reconnect forever with the same id. Ignoring the id would instead replay
    the whole history to a client that believes it is resuming.
    """
    if value is None or value == "":
        return 0
    after = decimal_at_most(value, BIGINT_MAX) if is_decimal(value) else None
    if after is None:
        raise ProblemError(
            400,
            "invalid_last_event_id",
            f"Last-Event-ID must be an event id this stream sent: a whole number from 0 to {BIGINT_MAX} "
            "in ASCII digits (or empty, to start from the beginning)",
        )
    return after


def check_visible(context: ApiContext, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
    with context.sessions() as session:
        owned_job(session, tenant_id, job_id)


def read_events(sessions: sessionmaker[Session], job_id: uuid.UUID, after: int) -> EventBatch:
    """Events after ``after``. The state is read first: if the job had ended by then, its final
    event was committed with that state and is among (or before) the events read next."""
    with sessions() as session:
        job = session.get(Job, job_id)
        state = None if job is None else job.state
        rows = session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.id > after)
            .order_by(JobEvent.id)
            .limit(EVENTS_PER_READ)
        ).all()
    events = [
        StreamEvent(
            id=row.id, type=row.type, data={"job_id": str(job_id), "at": row.at.isoformat(), **row.data}
        )
        for row in rows
    ]
    ended = state is None or state in TERMINAL_STATES
    # Only a running attempt's progress is live: a re-queued job still carries its last attempt's.
    live = progress_event(job) if job is not None and is_running(job) and job.progress else None
    return EventBatch(events=events, finished=ended and len(rows) < EVENTS_PER_READ, snapshot=live)


def progress_event(job: Job) -> StreamEvent:
    """The job's progress as the jobs resource shows it (compared between polls, so no timestamp)."""
    return StreamEvent(
        id=None, type="progress", data={"job_id": str(job.id), **job_progress(job).model_dump(mode="json")}
    )


def key_revoked_event(job_id: uuid.UUID) -> StreamEvent:
    """The last event of a stream whose API key was revoked while it was open (no id: not replayed)."""
    detail = "the API key of this stream was revoked; the stream ends (reconnecting answers 401)"
    return StreamEvent(
        id=None, type="unauthorized", data={"job_id": str(job_id), "code": "unauthorized", "detail": detail}
    )


def ends_the_job(event: StreamEvent) -> bool:
    return event.type == "state" and event.data.get("state") in TERMINAL_STATES
