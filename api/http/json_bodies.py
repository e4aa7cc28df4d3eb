"""JSON request bodies are capped before FastAPI reads them.

FastAPI reads a JSON body whole before any dependency runs (the API key check included), so without
a cap anyone could make the API hold a body of any size in memory. A declared ``Content-Length`` over
the cap is refused unread; a longer chunked body is stopped as soon as it passes the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from api.http.errors import ProblemError
from api.http.uploads import BodyTooLargeError, capped_receive

MAX_JSON_BODY_BYTES = 1024 * 1024  # a job spec or a list of dataset indices is a few kilobytes


class CappedJsonRoute(APIRoute):
    """A route whose request body may hold at most ``MAX_JSON_BODY_BYTES`` (``route_class=``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped_handler(request: Request) -> Response:
            refuse_declared_oversize(request)
            return await handler(Request(request.scope, refusing_past_cap(request.receive)))

        return capped_handler


async def read_capped_body(request: Request) -> bytes:
    """The body of a route that reads it itself (one that also takes multipart uploads)."""
    refuse_declared_oversize(request)
    return await Request(request.scope, refusing_past_cap(request.receive)).body()


def refuse_declared_oversize(request: Request) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
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
