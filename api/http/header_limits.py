"""Request-header caps, checked before anything else reads the request (authentication included).

The server bounds what it buffers (``api/serve.py`` runs uvicorn's h11 parser with
``h11_max_incomplete_event_size``); this middleware bounds the number of header fields and their
total size under any server, and answers 431 as problem+json (docs/ARCHITECTURE.md §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.errors import ProblemError, problem_response

HEADER_LINE_OVERHEAD = 4  # ": " and CRLF around every field on the wire


@dataclass(frozen=True)
class HeaderLimits:
    max_fields: int
    max_bytes: int


class HeaderLimitMiddleware:
    """431 ``request_header_fields_too_large`` for too many header fields or too many header bytes."""

    def __init__(self, app: ASGIApp, *, limits: HeaderLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope["headers"])
            if refusal is not None:
                await problem_response(Request(scope), refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: list[tuple[bytes, bytes]]) -> ProblemError | None:
        size = sum(len(name) + len(value) + HEADER_LINE_OVERHEAD for name, value in headers)
        if len(headers) <= self.limits.max_fields and size <= self.limits.max_bytes:
            return None
        return ProblemError(
            431,
            "request_header_fields_too_large",
            f"the request has {len(headers)} header fields of {size} bytes in all; at most "
            f"{self.limits.max_fields} fields and {self.limits.max_bytes} bytes are accepted",
        )
