"""An httpx transport that remembers what the client sent (the real network underneath): which
pages were asked for, which Last-Event-ID a reconnecting stream carried."""

from __future__ import annotations

import httpx


class RecordingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)

    def sent(self, path: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.path == path]
