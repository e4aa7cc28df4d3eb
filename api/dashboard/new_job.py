"""The new-job form: posted to the JSON API's own submit function, its errors shown by their fields.

Each rendering of the form carries a fresh Idempotency-Key, so a double click or a resent form
creates one job (the API replays its first answer).
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.context import Context
from api.dashboard.job_form import (
    ESSENTIAL_FIELDS,
    FormField,
    field_of_message,
    submission_fields,
    typed_values,
)
from api.dashboard.page_route import PageRoute
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import CheckedForm, SignedIn, Viewer
from api.datasets.routes import list_datasets
from api.http.errors import ProblemError
from api.http.pagination import MAX_PAGE_SIZE
from api.jobs.routes import submit_job
from api.jobs.schemas import JobSubmission
from batchcam.errors import BatchCamError, LayerError

IDEMPOTENCY_FIELD = "idempotency_key"

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/jobs/new")
def new_job_form(request: Request, viewer: SignedIn, context: Context) -> Response:
    return form_page(request, viewer, context, entered={}, errors={}, status_code=200, key=str(uuid.uuid4()))


@router.post("/jobs/new")
async def submit_new_job(request: Request, posted: CheckedForm, context: Context) -> Response:
    fields = submission_fields()
    values, entered = typed_values(fields, posted.form)
    key = posted.form.get(IDEMPOTENCY_FIELD)
    key = key if isinstance(key, str) and 0 < len(key) <= 255 else str(uuid.uuid4())
    errors: dict[str, str] = {}
    try:
        submission = JobSubmission.model_validate(values)
        answer = await run_in_threadpool(submit_job, submission, posted.viewer.caller, context, key)
    except ValidationError as invalid:
        errors = {str(error["loc"][0]) if error["loc"] else "": error["msg"] for error in invalid.errors()}
    except LayerError as error:
        errors = {"target_layer": str(error)}
    except BatchCamError as error:
        errors = {field_of_message(fields, str(error)) or "": str(error)}
    except ProblemError as problem:  # e.g. this form's key already made a different job: a new key
        errors, key = {"": problem.detail}, str(uuid.uuid4())
    if errors:
        return await run_in_threadpool(
            form_page,
            request,
            posted.viewer,
            context,
            entered=entered,
            errors=errors,
            status_code=422,
            key=key,
        )
    job_id = json.loads(bytes(answer.body))["id"]
    return RedirectResponse(f"{DASHBOARD_PATH}/jobs/{job_id}", status_code=303)


def form_page(
    request: Request,
    viewer: Viewer,
    context: Context,
    *,
    entered: dict[str, str],
    errors: dict[str, str],
    status_code: int,
    key: str,
) -> Response:
    fields = submission_fields()
    datasets = list_datasets(viewer.caller, context, limit=MAX_PAGE_SIZE, cursor=None).items
    essential = [field for field in fields if field.name in ESSENTIAL_FIELDS]
    more = [field for field in fields if field.name not in ESSENTIAL_FIELDS]
    return render(
        request,
        "new_job.html",
        viewer,
        {
            "section": "new",
            "essential": essential,
            "more": more,
            "more_has_errors": any(field.name in errors for field in more),
            "datasets": datasets,
            "entered": {field.name: shown_value(field, entered) for field in fields},
            "errors": errors,
            "idempotency_field": IDEMPOTENCY_FIELD,
            "idempotency_key": key,
        },
        status_code=status_code,
    )


def shown_value(field: FormField, entered: dict[str, str]) -> str:
    if field.name in entered:
        return entered[field.name]
    return "" if field.default is None else str(field.default)
