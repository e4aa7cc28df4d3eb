"""A request id on every response, and the last-resort 500 problem for bugs (logged with that id).

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses such as event streams pass untouched.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import PROBLEM_MEDIA_TYPE, problem_body

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own id is kept only when it is short and plain (it ends up in logs).
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(scope: MutableMapping[str, Any]) -> str | None:
    state = scope.get("state") or {}
    request_id = state.get("request_id")
    return request_id if isinstance(request_id, str) else None


def incoming_or_new_request_id(scope: Scope) -> str:
    offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if offered is not None and _ACCEPTABLE_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_or_new_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            # Method and path only: headers and query strings may carry credentials.
            logger.exception(
                "unhandled error (request_id=%s) in %s %s", request_id, scope["method"], scope["path"]
            )
            if response_started:
                raise  # mid-stream: nothing left to do but let the server drop the connection
            await internal_error_response(scope, request_id)(scope, receive, send_with_request_id)


def internal_error_response(scope: Scope, request_id: str) -> JSONResponse:
    body = problem_body(
        status=500,
        code="internal_error",
        detail=f"an internal error occurred; quote request id {request_id} when reporting it",
        instance=scope["path"],
        request_id=request_id,
    )
    return JSONResponse(body, status_code=500, media_type=PROBLEM_MEDIA_TYPE)
