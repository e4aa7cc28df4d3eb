"""Datasets: upload (``.npz`` or a zip of class folders), list (built-ins alongside uploads), read."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext, Context
from api.datasets.registration import register_dataset
from api.datasets.schemas import DatasetPage, DatasetResource
from api.datasets.views import (
    DATASETS_PATH,
    builtin_dataset_resource,
    builtin_dataset_resources,
    uploaded_dataset_resource,
)
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
from api.http.openapi import LOCATION_HEADER, problem_responses
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
from api.http.uploads import FILE_FIELD, NAME_FIELD, SpooledUpload, spooled_upload
from api.jobs.specs import parse_uuid
from api.ownership import owned_dataset
from batchcam.spec.datasets import BUILTIN_DATASETS, UPLOAD_FORMATS
from persistence.db import transaction
from persistence.models import Dataset

router = APIRouter(prefix=DATASETS_PATH, tags=["datasets"])
UPLOAD_OPERATION = "POST /v1/datasets"

# Documented by hand: the route reads the body as a stream (to cap it) instead of a FastAPI form.
UPLOAD_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary", "description": UPLOAD_FORMATS},
                        NAME_FIELD: {
                            "type": "string",
                            "maxLength": 200,
                            "description": "Defaults to the file name.",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=DatasetResource,
    summary="Upload a dataset (.npz, or a .zip of one folder per class)",
    openapi_extra=UPLOAD_REQUEST_BODY,
    responses={
        201: {"description": "Validated and stored.", "headers": {"Location": LOCATION_HEADER}},
        200: {"model": DatasetResource, "description": "This content was uploaded before: that dataset."},
        **problem_responses(400, 401, 409, 413, 415, 422, 503),
    },
)
async def upload_dataset(
    request: Request, caller: Caller, context: Context, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    async with spooled_upload(request, context.upload_limits.max_bytes) as upload:
        return await run_in_threadpool(register_once, context, caller.tenant_id, upload, idempotency_key)


def register_once(
    context: ApiContext, tenant_id: uuid.UUID, upload: SpooledUpload, idempotency_key: str | None
) -> JSONResponse:
    """Register the upload, or replay the answer to an earlier request with the same key and file.

    The row and the stored answer commit separately: if the request dies between them, the retry
    finds the same content and answers the same dataset (uploads are deduplicated by content).
    """
    request = IdempotentRequest(
        tenant_id, idempotency_key, UPLOAD_OPERATION, {"sha256": upload.sha256, "name": upload.name}
    )

    def register(claim: IdempotencyClaim | None) -> StoredResponse:
        registration = register_dataset(context, tenant_id, upload)
        resource = uploaded_dataset_resource(registration.dataset)
        response = StoredResponse(
            status=201 if registration.created else 200,
            body=resource.model_dump(mode="json"),
            headers={"Location": resource.links.dataset},
        )
        if claim is not None:
            with transaction(context.sessions) as session:
                record_response(session, claim, response)
        return response

    response, replayed = answer_once(context.sessions, request, context.clock(), register)
    return stored_json_response(response, replayed=replayed)


@router.get(
    "", response_model=DatasetPage, summary="List datasets", responses=problem_responses(400, 401, 422)
)
def list_datasets(
    caller: Caller,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Uploads per page.")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="links.next of the previous page.")
    ] = None,
) -> DatasetPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(Dataset).where(Dataset.tenant_id == caller.tenant_id)
    with context.sessions() as session:
        rows = list(
            session.scalars(
                newest_first_page(query, Dataset.created_at, Dataset.id, after=after, limit=limit)
            )
        )
    page, next_cursor = split_page(rows, limit, lambda row: Cursor(row.created_at, row.id))
    builtins = builtin_dataset_resources() if after is None else []
    return DatasetPage(
        items=builtins + [uploaded_dataset_resource(row) for row in page],
        next_cursor=next_cursor,
        links=PageLinks(next=next_page_link(DATASETS_PATH, next_cursor, limit)),
    )


@router.get(
    "/{dataset_id}",
    response_model=DatasetResource,
    summary="A dataset",
    responses=problem_responses(401, 404, 422),
)
def get_dataset(
    dataset_id: Annotated[str, Path(max_length=200, description="A built-in name or an upload's id.")],
    caller: Caller,
    context: Context,
) -> DatasetResource:
    if dataset_id in BUILTIN_DATASETS:
        return builtin_dataset_resource(dataset_id)
    upload_id = parse_uuid(dataset_id)
    if upload_id is None:
        raise ProblemError(404, "dataset_not_found", f"there is no dataset {dataset_id!r}")
    with context.sessions() as session:
        return uploaded_dataset_resource(owned_dataset(session, caller.tenant_id, upload_id))
