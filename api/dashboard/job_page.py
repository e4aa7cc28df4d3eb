"""A job's page: its spec, live progress, training curves, warnings, failure, and a cancel button."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.context import Context
from api.dashboard.page_route import PageRoute
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import CheckedForm, SignedIn
from api.jobs.events import read_events
from api.jobs.routes import cancel_job, get_job, get_job_metrics

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/jobs/{job_id}")
def job_page(job_id: uuid.UUID, request: Request, viewer: SignedIn, context: Context) -> Response:
    job = get_job(job_id, viewer.caller, context)  # another tenant's job: the API's 404
    history = get_job_metrics(job_id, viewer.caller, context)
    # The same stored events the job's event stream replays: its warnings are shown as they came.
    events = read_events(context.sessions, job_id, 0).events
    warnings = [event.data.get("message", "") for event in events if event.type == "warning"]
    return render(
        request,
        "job.html",
        viewer,
        {
            "section": "jobs",
            "job": job,
            "spec": job.spec.model_dump(),
            "epochs": [record.model_dump(mode="json") for record in history.epochs],
            "warnings": warnings,
            "cancellable": not job.terminal,  # a cancelling job may be asked again: the API allows it
        },
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: uuid.UUID, posted: CheckedForm, context: Context) -> RedirectResponse:
    cancel_job(job_id, posted.viewer.caller, context)  # a finished job: the API's 409, as an error page
    return RedirectResponse(f"{DASHBOARD_PATH}/jobs/{job_id}", status_code=303)
