"""Explanations: submit against a model (uploaded images or dataset indices), list, read, fetch heatmaps."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext, Context
from api.explanations.heatmaps import (
    MAX_HEATMAP_SCALE,
    HeatmapStyle,
    StoredItem,
    cam_npy,
    check_colormap,
    heatmap_png,
    read_item_maps,
)
from api.explanations.intake import IMAGES_FIELD, METHOD_FIELD, METRICS_FIELD, TARGETS_FIELD, read_submission
from api.explanations.limits import ExplanationLimits
from api.explanations.schemas import (
    METHOD_DESCRIPTION,
    METRICS_DESCRIPTION,
    TARGETS_DESCRIPTION,
    DatasetExplanationRequest,
    ExplanationPage,
    ExplanationResource,
    ExplanationState,
)
from api.explanations.submission import create_explanation, prepare_explanation, remembered_preparation
from api.explanations.views import (
    EXPLANATIONS_PATH,
    SUMMARY_COLUMNS,
    ExplanationHead,
    explanation_path,
    explanation_resource,
    explanation_summary,
)
from api.explanations.waiting import MAX_WAIT_SECONDS, wait_until_finished
from api.http.auth import Caller
from api.http.caching import content_response
from api.http.errors import ProblemError
from api.http.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    IdempotentRequest,
    StoredResponse,
    answer_once,
    replayed_header,
    stored_json_response,
)
from api.http.openapi import (
    LOCATION_HEADER,
    OCTET_STREAM,
    RETRY_AFTER_HEADER,
    binary_content,
    problem_responses,
)
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
from api.models.views import MODELS_PATH, model_spec
from api.ops.metrics import ApiMetrics
from api.ownership import owned_explanation
from batchcam.pixels.heatmaps import DEFAULT_COLORMAP, colormap_names
from persistence.db import transaction
from persistence.explanations.leases import request_explanation_cancel
from persistence.explanations.objects import INLINE
from persistence.models import Explanation, Model
from persistence.notifications import Channel
from persistence.states import LEASED_STATES, JobState
from persistence.wakeups import send_after_commit

router = APIRouter(tags=["explanations"])

SUBMIT_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [IMAGES_FIELD],
                    "additionalProperties": False,
                    "properties": {
                        IMAGES_FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": ExplanationLimits().max_images,
                            "description": "PNG or JPEG images (repeat the field), or .npz files each "
                            "holding an 'images' array of many (uint8 N×H×W or N×H×W×C, C = 1 or 3): "
                            "one item per image.",
                        },
                        TARGETS_FIELD: {
                            "type": "string",
                            "description": f"A JSON array. {TARGETS_DESCRIPTION}",
                            "examples": ["[3, null]"],
                        },
                        METHOD_FIELD: {"type": "string", "description": METHOD_DESCRIPTION},
                        METRICS_FIELD: {
                            "type": "string",
                            "description": f"Comma-separated. {METRICS_DESCRIPTION}",
                            "examples": ["deletion,insertion"],
                        },
                    },
                }
            },
            "application/json": {"schema": DatasetExplanationRequest.model_json_schema()},
        },
    }
}
PNG_OR_NPY_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match ETag is current."},
    **problem_responses(401, 404, 409, 422, 503),
}


@router.post(
    f"{MODELS_PATH}/{{model_id}}/explanations",
    status_code=202,
    response_model=ExplanationResource,
    summary="Explain images with a model: uploaded PNG/JPEG/.npz files, or dataset indices",
    openapi_extra=SUBMIT_REQUEST_BODY,
    responses={
        202: {
            "description": "Queued (or still running when ?wait ran out).",
            "headers": {"Location": LOCATION_HEADER, "Retry-After": RETRY_AFTER_HEADER},
        },
        200: {"model": ExplanationResource, "description": "Finished within ?wait."},
        **problem_responses(400, 401, 404, 409, 413, 415, 422, 503),
    },
)
async def submit_explanation(
    model_id: uuid.UUID,
    request: Request,
    caller: Caller,
    context: Context,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description=(
                "Answer 200 with the result if it ends this soon. Each API process holds a bounded "
                "number of such waits (BATCHCAM_MAX_WAITING_REQUESTS); past it the answer is the "
                "usual 202 at once, to be polled."
            ),
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    enqueue = context.enqueue_explanation
    if enqueue is None:
        raise ProblemError(503, "explanations_unavailable", "this server is not set up to run explanations")
    submission = await read_submission(request, context)
    # Uploads for a model this process knows is ready need no database: no trip to the threadpool.
    prepared = remembered_preparation(context, caller.tenant_id, model_id, submission)
    if prepared is None:
        prepared = await run_in_threadpool(
            prepare_explanation, context, caller.tenant_id, model_id, submission
        )
    operation = f"POST {MODELS_PATH}/{model_id}/explanations"
    idempotent = IdempotentRequest(caller.tenant_id, idempotency_key, operation, submission.fingerprint)
    new_id = uuid.uuid4()
    # Watched before the row is committed: a worker may end it at once (in another request's batch).
    with context.changes.watch(Channel.EXPLANATION_ENDED, str(new_id)) as ended:

        def create(claim: IdempotencyClaim | None) -> StoredResponse:
            return create_explanation(context, caller.tenant_id, prepared, submission, claim, new_id)

        def create_and_enqueue() -> tuple[StoredResponse, bool]:  # one trip to the threadpool, not two
            response, replayed = answer_once(context.sessions, idempotent, context.clock(), create)
            if not replayed:
                send_after_commit(partial(enqueue, new_id, prepared.model_id), f"explanation {new_id}")
            return response, replayed

        response, replayed = await run_in_threadpool(create_and_enqueue)
        explanation_id = uuid.UUID(response.body["id"])
        if not wait:
            return stored_json_response(response, replayed=replayed)
        # A replayed submission waits too: a client retrying a lost answer wants the result.
        metrics: ApiMetrics = request.app.state.metrics
        finished = None
        with context.wait_slots.take() as slot:
            if slot:
                watched = ended if explanation_id == new_id else None  # a replay's row is older
                finished = await wait_until_finished(
                    context.sessions, context.changes, explanation_id, wait, watched=watched
                )
            else:
                metrics.explain_waits_refused.inc()
    if finished is None:
        return stored_json_response(response, replayed=replayed)
    waited = (context.clock() - finished.created_at).total_seconds()
    metrics.explain_wait_seconds.labels(finished.state).observe(max(waited, 0.0))
    # Serialised by pydantic at once, not dumped to dicts for json.dumps: this is every ?wait answer.
    body = explanation_resource(finished, prepared.class_names).model_dump_json()
    headers = {"Content-Location": response.headers["Location"]} | replayed_header(replayed)
    return Response(body, status_code=200, headers=headers, media_type="application/json")


@router.get(
    EXPLANATIONS_PATH,
    response_model=ExplanationPage,
    summary="List explanations, newest first (summaries; read one for its per-image results)",
    responses=problem_responses(400, 401, 422),
)
def list_explanations(
    caller: Caller,
    context: Context,
    state: Annotated[
        list[ExplanationState] | None, Query(description="Only explanations in these states (repeatable).")
    ] = None,
    model_id: Annotated[uuid.UUID | None, Query(description="Only explanations by this model.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="links.next of the previous page.")
    ] = None,
) -> ExplanationPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(*SUMMARY_COLUMNS).where(Explanation.tenant_id == caller.tenant_id)
    filters: list[tuple[str, str]] = []
    if state:
        query = query.where(Explanation.state.in_([s.value for s in state]))
        filters += [("state", s.value) for s in state]
    if model_id is not None:
        # Another tenant's model id is no error here: the tenant condition leaves the page empty.
        query = query.where(Explanation.model_id == model_id)
        filters.append(("model_id", str(model_id)))
    page_query = newest_first_page(query, Explanation.created_at, Explanation.id, after=after, limit=limit)
    with context.sessions() as session:
        rows = [ExplanationHead.from_row(row) for row in session.execute(page_query)]
    page, next_cursor = split_page(rows, limit, lambda head: Cursor(head.created_at, head.id))
    return ExplanationPage(
        items=[explanation_summary(head) for head in page],
        next_cursor=next_cursor,
        links=PageLinks(next=next_page_link(EXPLANATIONS_PATH, next_cursor, limit, filters)),
    )


@router.get(
    f"{EXPLANATIONS_PATH}/{{explanation_id}}",
    response_model=ExplanationResource,
    summary="An explanation: per image prediction, probabilities, target, prototype distances, links",
    responses=problem_responses(401, 404, 422),
)
def get_explanation(explanation_id: uuid.UUID, caller: Caller, context: Context) -> ExplanationResource:
    explanation, model = read_explanation(context, caller.tenant_id, explanation_id)
    return explanation_resource(explanation, model_spec(model).class_names)


@router.post(
    f"{EXPLANATIONS_PATH}/{{explanation_id}}/cancel",
    status_code=202,
    response_model=ExplanationResource,
    summary="Cancel an explanation: a queued one at once, a running one between batches (cancelling)",
    responses=problem_responses(401, 404, 409, 422),
)
def cancel_explanation(explanation_id: uuid.UUID, caller: Caller, context: Context) -> ExplanationResource:
    with transaction(context.sessions) as session:
        # Locked: a worker's end waits for this request, so one of the two decides, never both.
        explanation = owned_explanation(session, caller.tenant_id, explanation_id, for_update=True)
        if explanation.state in (JobState.SUCCEEDED, JobState.FAILED):
            raise ProblemError(
                409,
                "explanation_already_finished",
                f"explanation {explanation_id} already ended {explanation.state}",
            )
        request_explanation_cancel(session, explanation, context.clock())
    return get_explanation(explanation_id, caller, context)


@router.get(
    f"{EXPLANATIONS_PATH}/{{explanation_id}}/heatmaps/{{index}}.png",
    response_class=Response,
    summary="One image's heatmap as a PNG: over the image (overlay) or grayscale (raw)",
    responses={
        200: {"description": "A PNG image (immutable).", "content": binary_content("image/png")},
        **PNG_OR_NPY_RESPONSES,
    },
)
def get_heatmap_png(
    explanation_id: uuid.UUID,
    index: int,
    request: Request,
    caller: Caller,
    context: Context,
    style: Annotated[
        HeatmapStyle, Query(description="overlay: colormap over the image; raw: round(CAM × 255) gray.")
    ] = "overlay",
    colormap: Annotated[
        str,
        Query(
            description="A matplotlib colormap name (overlay only).",
            json_schema_extra={"enum": list(colormap_names())},
        ),
    ] = DEFAULT_COLORMAP,
    scale: Annotated[int, Query(ge=1, le=MAX_HEATMAP_SCALE, description="Nearest-neighbour upscaling.")] = 1,
) -> Response:
    check_colormap(colormap)
    maps = read_item_maps(
        context.object_store, finished_item(context, caller.tenant_id, explanation_id, index)
    )
    return content_response(request, heatmap_png(maps, style, colormap, scale), media_type="image/png")


@router.get(
    f"{EXPLANATIONS_PATH}/{{explanation_id}}/heatmaps/{{index}}.npy",
    response_class=Response,
    summary="One image's CAM as a float32 H×W NumPy array (.npy), values in [0, 1]",
    responses={
        200: {"description": "A .npy file (immutable).", "content": binary_content(OCTET_STREAM)},
        **PNG_OR_NPY_RESPONSES,
    },
)
def get_heatmap_array(
    explanation_id: uuid.UUID, index: int, request: Request, caller: Caller, context: Context
) -> Response:
    maps = read_item_maps(
        context.object_store, finished_item(context, caller.tenant_id, explanation_id, index)
    )
    return content_response(request, cam_npy(maps), media_type="application/octet-stream")


def read_explanation(
    context: ApiContext, tenant_id: uuid.UUID, explanation_id: uuid.UUID
) -> tuple[Explanation, Model]:
    with context.sessions() as session:
        explanation = owned_explanation(session, tenant_id, explanation_id)
        return explanation, session.get_one(Model, explanation.model_id)


def finished_item(
    context: ApiContext, tenant_id: uuid.UUID, explanation_id: uuid.UUID, index: int
) -> StoredItem:
    """The stored result of image ``index``; a problem if there is no heatmap (yet) for it."""
    with context.sessions() as session:
        explanation = owned_explanation(session, tenant_id, explanation_id)
        result = checked_result(explanation, index)
        inline = explanation.inline_maps if result.get("maps") == INLINE else None  # deferred: loads now
    return StoredItem(result, inline)


def checked_result(explanation: Explanation, index: int) -> dict[str, Any]:
    explanation_id = explanation.id
    if explanation.state in (JobState.QUEUED, *LEASED_STATES):
        raise ProblemError(
            409,
            "explanation_not_finished",
            f"explanation {explanation_id} is {explanation.state}; its heatmaps exist once it succeeds",
            headers={"Retry-After": "1"},
            links={"explanation": explanation_path(explanation_id)},
        )
    results = explanation.results or []
    if not 0 <= index < len(results):
        raise ProblemError(
            404,
            "heatmap_not_found",
            f"explanation {explanation_id} has no image {index}"
            + (f" (it has {len(results)})" if results else f" ({explanation.state}, no results)"),
        )
    result: dict[str, Any] = results[index]
    if "error" in result:
        raise ProblemError(
            404,
            "heatmap_not_found",
            f"image {index} could not be explained: {result['error'].get('message', 'unknown error')}",
        )
    return result
