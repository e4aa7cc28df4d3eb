"""Templates and the headers every page is sent with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from api.dashboard.formatting import FILTERS
from api.dashboard.session import CSRF_FIELD, Viewer

PACKAGE = Path(__file__).parent
DASHBOARD_PATH = "/dashboard"
# Everything comes from this origin (the dashboard works offline); no inline script can run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",  # pages hold a tenant's data and the CSRF token
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

templates = Jinja2Templates(directory=PACKAGE / "templates")
templates.env.filters.update(FILTERS)


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    values = {
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "csrf_token": viewer.csrf_token if viewer else None,
        "base": DASHBOARD_PATH,
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, template, values, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})}
    )
