"""The models page: every model the tenant's succeeded jobs produced, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.dashboard.page_route import PageRoute
from api.dashboard.paging import list_links
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import SignedIn
from api.models.routes import list_models

PAGE_SIZE = 20

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/models")
def models_page(
    request: Request,
    viewer: SignedIn,
    context: Context,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = list_models(viewer.caller, context, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "models.html",
        viewer,
        {
            "section": "models",
            "models": page.items,
            "links": list_links(f"{DASHBOARD_PATH}/models", {}, cursor, page.next_cursor),
        },
    )
