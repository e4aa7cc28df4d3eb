"""The explanations pages: the tenant's explanations (by state or model), and one with its heatmaps."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.context import Context
from api.dashboard.page_route import PageRoute
from api.dashboard.paging import list_links
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import SignedIn
from api.explanations.routes import get_explanation, list_explanations
from api.explanations.schemas import ExplanationState
from api.models.routes import get_model

PAGE_SIZE = 20

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/explanations")
def explanations_page(
    request: Request,
    viewer: SignedIn,
    context: Context,
    state: Annotated[ExplanationState | None, Query()] = None,
    model_id: Annotated[uuid.UUID | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = list_explanations(
        viewer.caller,
        context,
        state=[state] if state else None,
        model_id=model_id,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    filters = {"state": state.value if state else None, "model_id": str(model_id) if model_id else None}
    kept = {name: value for name, value in filters.items() if value}
    return render(
        request,
        "explanations.html",
        viewer,
        {
            "section": "explanations",
            "explanations": page.items,
            "states": [s.value for s in ExplanationState],
            "state": state.value if state else "",
            "model_id": str(model_id) if model_id else "",
            "links": list_links(f"{DASHBOARD_PATH}/explanations", kept, cursor, page.next_cursor),
        },
    )


@router.get("/explanations/{explanation_id}")
def explanation_page(
    explanation_id: uuid.UUID, request: Request, viewer: SignedIn, context: Context
) -> Response:
    explanation = get_explanation(explanation_id, viewer.caller, context)  # another tenant's: the API's 404
    names = [item.name for item in get_model(explanation.model_id, viewer.caller, context).classes]
    rankings = {item.index: ranked(names, item.probabilities or []) for item in explanation.items}
    return render(
        request,
        "explanation.html",
        viewer,
        {"section": "explanations", "explanation": explanation, "rankings": rankings},
    )


def ranked(names: list[str], probabilities: list[float]) -> list[tuple[str, float]]:
    """Each class with the model's probability for it, most likely first."""
    return sorted(zip(names, probabilities, strict=True), key=lambda pair: pair[1], reverse=True)
