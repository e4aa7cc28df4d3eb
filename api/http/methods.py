"""Which methods a path allows: ``OPTIONS`` answered with all of them, and a 405's ``Allow`` too.

Starlette matches a method on the first route whose path fits, so on a path served by two routes
(``GET`` and ``POST /v1/jobs``) its 405 named one of them, and ``OPTIONS`` was such a 405. Here
every route whose path fits counts (RFC 9110 §9.3.7, §15.5.6).
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.routing import Match

OPTIONS = "OPTIONS"
METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this request's path, ``OPTIONS`` included.

    Asked of the routes themselves, one method at a time (``BaseRoute.matches``), so included
    routers and path parameters count as the router itself would see them."""
    routes = request.app.router.routes
    methods = [OPTIONS]
    for method in METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            methods.append(method)
    return sorted(methods)


def options_answer(request: Request) -> Response:
    return Response(status_code=204, headers={"Allow": ", ".join(allowed_methods(request))})
