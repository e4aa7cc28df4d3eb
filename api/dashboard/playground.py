"""The explain playground of a model: drop images, pick method, target class and colormap, and see
each overlay beside its raw heatmap. The page's script posts the images to the JSON API
(``POST /v1/models/{id}/explanations?wait=…``) with the session cookie and CSRF token."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from api.context import Context
from api.dashboard.page_route import PageRoute
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import SignedIn
from api.models.routes import get_model
from batchcam.pixels.heatmaps import DEFAULT_COLORMAP, colormap_names
from batchcam.spec.names import CAM_METHOD_NAMES

# The colormaps offered first; every other one the API knows follows.
FAVOURITE_COLORMAPS = ("jet", "viridis", "inferno", "magma", "turbo", "coolwarm", "gray")

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("/models/{model_id}/explain")
def playground_page(model_id: uuid.UUID, request: Request, viewer: SignedIn, context: Context) -> Response:
    model = get_model(model_id, viewer.caller, context)  # another tenant's model: the API's 404
    known = set(colormap_names())
    favourites = [name for name in (DEFAULT_COLORMAP, *FAVOURITE_COLORMAPS) if name in known]
    colormaps = list(dict.fromkeys(favourites + sorted(name for name in known if not name.endswith("_r"))))
    return render(
        request,
        "playground.html",
        viewer,
        {
            "section": "models",
            "model": model,
            "methods": CAM_METHOD_NAMES,
            "colormaps": colormaps,
            "default_colormap": DEFAULT_COLORMAP,
        },
    )
