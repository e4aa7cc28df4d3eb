"""Trained models: description, prototypes, CAM prototypes, figures, report, gallery and weights.

Every artifact is immutable and streamed from the object store with a strong ETag.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from api.context import ApiContext, Context
from api.http.auth import Caller
from api.http.caching import stored_object_response
from api.http.errors import ProblemError
from api.http.openapi import OCTET_STREAM, binary_content, problem_responses
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
from api.models.gallery import decode_position, gallery_page
from api.models.schemas import MisclassifiedPage, ModelPage, ModelResource
from api.models.views import (
    FIGURES,
    MODELS_PATH,
    REPORT_ARTIFACT,
    WEIGHTS_ARTIFACT,
    cam_prototype_artifact,
    misclassified_artifact,
    model_resource,
    model_spec,
    prototype_artifact,
)
from api.ownership import model_is_ready, owned_model
from persistence.models import Model
from persistence.objects import ObjectNotFoundError

router = APIRouter(prefix=MODELS_PATH, tags=["models"])

DEFAULT_GALLERY_PAGE = 100
MAX_GALLERY_PAGE = 1000
ETAG_HEADER = {
    "description": "Strong validator; send it back in If-None-Match.",
    "schema": {"type": "string"},
}


def artifact_responses(description: str, content: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": description, "content": content, "headers": {"ETag": ETAG_HEADER}},
        304: {"description": "Not modified: the If-None-Match ETag is current."},
        **problem_responses(401, 404, 422, 503),
    }


PNG_RESPONSES = artifact_responses("A PNG image (immutable).", binary_content("image/png"))
REPORT_SCHEMA = {"type": "object", "additionalProperties": True, "title": "Report"}


@router.get(
    "",
    response_model=ModelPage,
    summary="List models, newest first",
    responses=problem_responses(400, 401, 422),
)
def list_models(
    caller: Caller,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="links.next of the previous page.")
    ] = None,
) -> ModelPage:
    after = decode_cursor(cursor) if cursor is not None else None
    query = select(Model).where(Model.tenant_id == caller.tenant_id)
    with context.sessions() as session:
        rows = list(
            session.scalars(newest_first_page(query, Model.created_at, Model.id, after=after, limit=limit))
        )
    page, next_cursor = split_page(rows, limit, lambda model: Cursor(model.created_at, model.id))
    return ModelPage(
        # A model row is written in the transaction that marks its job succeeded: listed means ready.
        items=[model_resource(model, ready=True) for model in page],
        next_cursor=next_cursor,
        links=PageLinks(next=next_page_link(MODELS_PATH, next_cursor, limit)),
    )


@router.get(
    "/{model_id}", response_model=ModelResource, summary="A model", responses=problem_responses(401, 404, 422)
)
def get_model(model_id: uuid.UUID, caller: Caller, context: Context) -> ModelResource:
    with context.sessions() as session:
        model = owned_model(session, caller.tenant_id, model_id)
        return model_resource(model, ready=model_is_ready(session, model))


@router.get(
    "/{model_id}/prototypes/{class_index}.png",
    response_class=Response,
    summary="A class prototype: the mean training image of the class (grayscale PNG)",
    responses=PNG_RESPONSES,
)
def get_prototype(
    model_id: uuid.UUID, class_index: int, request: Request, caller: Caller, context: Context
) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    check_class(model, class_index)
    return artifact_response(request, context, model, prototype_artifact(class_index), "image/png")


@router.get(
    "/{model_id}/cam-prototypes/{class_index}.png",
    response_class=Response,
    summary="A CAM prototype: the mean CAM of the class over the test set (heatmap PNG)",
    responses=PNG_RESPONSES,
)
def get_cam_prototype(
    model_id: uuid.UUID, class_index: int, request: Request, caller: Caller, context: Context
) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    check_class(model, class_index)
    return artifact_response(request, context, model, cam_prototype_artifact(class_index), "image/png")


@router.get(
    "/{model_id}/figures/{figure}.png",
    response_class=Response,
    summary=f"An overview picture drawn at training time ({', '.join(FIGURES)})",
    responses=PNG_RESPONSES,
)
def get_figure(
    model_id: uuid.UUID, figure: str, request: Request, caller: Caller, context: Context
) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    if figure not in FIGURES:
        raise ProblemError(
            404, "figure_not_found", f"there is no figure {figure!r}; the figures are {', '.join(FIGURES)}"
        )
    return artifact_response(request, context, model, FIGURES[figure], "image/png")


@router.get(
    "/{model_id}/report",
    response_class=Response,
    summary="The evaluation report written at training time (JSON)",
    responses=artifact_responses(
        "The report: config, dataset, test metrics, history (a JSON object).",
        {"application/json": {"schema": REPORT_SCHEMA}},
    ),
)
def get_report(model_id: uuid.UUID, request: Request, caller: Caller, context: Context) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    return artifact_response(request, context, model, REPORT_ARTIFACT, "application/json")


@router.get(
    "/{model_id}/misclassified",
    response_model=MisclassifiedPage,
    summary="The misclassified test images, with labels, confidence, CAM distances and image links",
    responses=problem_responses(400, 401, 404, 422, 503),
)
def get_misclassified(
    model_id: uuid.UUID,
    caller: Caller,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_GALLERY_PAGE)] = DEFAULT_GALLERY_PAGE,
    cursor: Annotated[
        str | None, Query(max_length=200, description="links.next of the previous page.")
    ] = None,
) -> MisclassifiedPage:
    after = decode_position(cursor) if cursor is not None else 0
    model = read_model(context, caller.tenant_id, model_id)
    return gallery_page(
        model, model_spec(model).class_names, read_report(context, model), after=after, limit=limit
    )


@router.get(
    "/{model_id}/misclassified/{index}.png",
    response_class=Response,
    summary="A misclassified test image with its CAM overlaid (PNG)",
    responses=PNG_RESPONSES,
)
def get_misclassified_image(
    model_id: uuid.UUID, index: int, request: Request, caller: Caller, context: Context
) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    name = misclassified_artifact(index)
    if name not in model.artifacts:
        raise ProblemError(
            404, "misclassified_image_not_found", f"test image {index} is not in model {model_id}'s gallery"
        )
    return artifact_response(request, context, model, name, "image/png")


@router.get(
    "/{model_id}/weights",
    response_class=Response,
    summary="The trained weights (safetensors; the model's spec is in the file's metadata)",
    responses=artifact_responses("A safetensors file.", binary_content(OCTET_STREAM)),
)
def get_weights(model_id: uuid.UUID, request: Request, caller: Caller, context: Context) -> Response:
    model = read_model(context, caller.tenant_id, model_id)
    disposition = f'attachment; filename="batchcam-model-{model.id}.safetensors"'
    return artifact_response(
        request,
        context,
        model,
        WEIGHTS_ARTIFACT,
        "application/octet-stream",
        headers={"Content-Disposition": disposition},
    )


def read_model(context: ApiContext, tenant_id: uuid.UUID, model_id: uuid.UUID) -> Model:
    with context.sessions() as session:
        return owned_model(session, tenant_id, model_id)


def check_class(model: Model, class_index: int) -> None:
    count = len(model_spec(model).class_names)
    if not 0 <= class_index < count:
        raise ProblemError(
            404,
            "class_not_found",
            f"model {model.id} has no class {class_index}; its classes are 0 to {count - 1}",
        )


def read_report(context: ApiContext, model: Model) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(context.object_store.get(artifact_key(model, REPORT_ARTIFACT)))
    except ObjectNotFoundError:
        raise artifact_missing(model, REPORT_ARTIFACT) from None
    return report


def artifact_key(model: Model, name: str) -> str:
    key = model.artifacts.get(name)
    if not isinstance(key, str):
        raise artifact_missing(model, name)
    return key


def artifact_missing(model: Model, name: str) -> ProblemError:
    return ProblemError(404, "artifact_not_found", f"model {model.id} has no stored {name}")


def artifact_response(
    request: Request,
    context: ApiContext,
    model: Model,
    name: str,
    media_type: str,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    return stored_object_response(
        request,
        context.object_store,
        artifact_key(model, name),
        media_type=media_type,
        missing=artifact_missing(model, name),
        headers=headers,
    )
