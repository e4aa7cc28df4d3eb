"""The models page: every model the tenant's succeeded jobs produced, newest first."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.dashboard.page_route import PageRoute
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
    next_page = (
        f"{DASHBOARD_PATH}/models?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None
    )
    return render(
        request,
        "models.html",
        viewer,
        {"section": "models", "models": page.items, "next_page": next_page, "first_page": cursor is not None},
    )
