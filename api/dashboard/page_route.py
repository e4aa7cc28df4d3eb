"""Page routes answer HTML, never problem+json: a missing session redirects to the sign-in form, and
the JSON API's problems (a 404 for another tenant's job, a 409) become an error page with their status."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from api.context import context_of
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import CsrfRefused, SignInRequired, viewer_of
from api.http.auth import cookie_session
from api.http.errors import ProblemError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except CsrfRefused:
                return error_page(
                    request,
                    403,
                    "This form is stale or was not sent by this dashboard: reload the page and try again.",
                )
            except ProblemError as problem:
                return error_page(request, problem.status, problem.detail)
            except RequestValidationError as invalid:  # a hand-edited address: ?state=nonsense
                where = ", ".join(
                    ".".join(str(part) for part in error["loc"][1:]) for error in invalid.errors()
                )
                return error_page(request, 422, f"This address has a value the page does not know: {where}.")

        return page_handler


def sign_in_redirect(request: Request) -> RedirectResponse:
    """To the sign-in form, which comes back here afterwards (a path on this site only)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{DASHBOARD_PATH}/sign-in?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, status: int, detail: str) -> Response:
    titles = {403: "Refused", 404: "Not found", 409: "Not possible now", 422: "Not understood"}
    session = cookie_session(request, context_of(request))  # signed in: the page keeps its menu
    return render(
        request,
        "error.html",
        viewer_of(session) if session is not None else None,
        {"title": titles.get(status, "Something went wrong"), "status": status, "detail": detail},
        status_code=status,
    )
