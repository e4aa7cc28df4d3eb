"""The jobs page: the tenant's jobs, newest first, filtered by state, updating live in the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.dashboard.page_route import PageRoute
from api.dashboard.paging import list_links
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import SignedIn
from api.jobs.routes import list_jobs
from persistence.states import JobState

PAGE_SIZE = 20

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/jobs")
def jobs_page(
    request: Request,
    viewer: SignedIn,
    context: Context,
    state: Annotated[JobState | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = list_jobs(viewer.caller, context, state=[state] if state else None, limit=PAGE_SIZE, cursor=cursor)
    filters = {"state": state.value} if state else {}
    return render(
        request,
        "jobs.html",
        viewer,
        {
            "section": "jobs",
            "jobs": page.items,
            "states": [s.value for s in JobState],
            "state": state.value if state else "",
            "links": list_links(f"{DASHBOARD_PATH}/jobs", filters, cursor, page.next_cursor),
        },
    )
