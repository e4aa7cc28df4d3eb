"""A model's page: report, confusion heat table, prototypes beside CAM prototypes, the paged gallery of
misclassified test images, faithfulness, and the weights."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.dashboard.model_report import report_view
from api.dashboard.page_route import PageRoute
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import SignedIn
from api.models.gallery import decode_position
from api.models.routes import get_misclassified, get_model, read_model, read_report

GALLERY_PAGE = 12
MAX_GALLERY_PAGE = 100

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/models/{model_id}")
def model_page(
    model_id: uuid.UUID,
    request: Request,
    viewer: SignedIn,
    context: Context,
    per_page: Annotated[int, Query(ge=1, le=MAX_GALLERY_PAGE)] = GALLERY_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    model = get_model(model_id, viewer.caller, context)  # another tenant's model: the API's 404
    names = [item.name for item in model.classes]
    report = report_view(read_report(context, read_model(context, viewer.caller.tenant_id, model_id)), names)
    gallery = get_misclassified(model_id, viewer.caller, context, limit=per_page, cursor=cursor)
    here = f"{DASHBOARD_PATH}/models/{model_id}"
    size = {"per_page": per_page} if per_page != GALLERY_PAGE else {}
    return render(
        request,
        "model.html",
        viewer,
        {
            "section": "models",
            "model": model,
            "report": report,
            "gallery": gallery,
            "gallery_next": f"{here}?{urlencode({**size, 'cursor': gallery.next_cursor})}#gallery"
            if gallery.next_cursor
            else None,
            "gallery_first": f"{here}?{urlencode(size)}#gallery" if cursor else None,
            "gallery_start": decode_position(cursor) if cursor else 0,
            "faithfulness": model.summary.faithfulness,
        },
    )
