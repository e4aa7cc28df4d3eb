"""JSON request bodies are capped before FastAPI reads them, and JSON nested too deeply is a 422.

FastAPI reads a JSON body whole before any dependency runs (the API key check included), so without
a cap anyone could make the API hold a body of any size in memory. A declared ``Content-Length`` over
the cap is refused unread; a longer chunked body is stopped as soon as it passes the cap.

``json.loads`` raises ``RecursionError`` for JSON nested about a thousand levels deep (2,000 nested
brackets are 4 KB); no request here is more than a few levels deep, so that is bad input, answered
as the other unreadable JSON is, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from api.http.errors import ProblemError
from api.http.uploads import BodyTooLargeError, capped_receive, declares_more_than

MAX_JSON_BODY_BYTES = 1024 * 1024  # a job spec or a list of dataset indices is a few kilobytes
TOO_DEEP = "JSON nested too deeply to read; no request here nests more than a few levels"


class CappedJsonRoute(APIRoute):
    """A route whose request body may hold at most ``MAX_JSON_BODY_BYTES`` (``route_class=``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped_handler(request: Request) -> Response:
            refuse_declared_oversize(request)
            try:
                return await handler(Request(request.scope, refusing_past_cap(request.receive)))
            except StarletteHTTPException as error:  # FastAPI's 400 for any body it failed to parse
                if isinstance(error.__cause__, RecursionError):
                    raise too_deeply_nested() from None
                raise

        return capped_handler


async def read_capped_body(request: Request) -> bytes:
    """The body of a route that reads it itself (one that also takes multipart uploads)."""
    refuse_declared_oversize(request)
    return await Request(request.scope, refusing_past_cap(request.receive)).body()


def loads_client_json(text: str | bytes) -> Any:
    """``json.loads`` for text a client sent: whatever is not readable JSON raises ``ValueError``,
    JSON nested too deeply included (``json.loads`` raises ``RecursionError`` there)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def too_deeply_nested() -> RequestValidationError:
    """The 422 that FastAPI's own unreadable-JSON answer is, with what went wrong."""
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": TOO_DEEP}])


def refuse_declared_oversize(request: Request) -> None:
    if declares_more_than(request.headers, MAX_JSON_BODY_BYTES):
        raise body_too_large()


def refusing_past_cap(receive: Receive) -> Receive:
    capped = capped_receive(receive, MAX_JSON_BODY_BYTES)

    async def receive_or_refuse() -> Message:
        try:
            return await capped()
        except BodyTooLargeError:
            # FastAPI passes an HTTPException raised while it reads the body on to the handlers;
            # any other exception would become a 400 "error parsing the body".
            raise HTTPException(413, body_too_large().detail) from None

    return receive_or_refuse


def body_too_large() -> ProblemError:
    return ProblemError(
        413,
        "payload_too_large",
        f"the request body is too large; at most {MAX_JSON_BODY_BYTES:,} bytes are accepted",
    )
