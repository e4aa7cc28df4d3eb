"""The asyncio shell around ``calls.exchange``: the same steps as ``sync.transport``, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx

from batchcam_client.calls import Call, Outcome, Sleep, build_request, exchange
from batchcam_client.following import Deadline
from batchcam_client.resources.base import Page
from batchcam_client.settings import ClientSettings

T = TypeVar("T")
R = TypeVar("R")


class AsyncTransport:
    def __init__(self, settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(**settings.http_options(), transport=transport)

    async def run(self, call: Call[T]) -> T:
        steps = exchange(call, self.settings.retry, lambda key: build_request(self.http, call, key))
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                outcome = None
            else:
                outcome = await self._send(step)

    async def _send(self, request: httpx.Request) -> Outcome:
        try:
            return await self.http.send(request)
        except httpx.TransportError as error:
            return error

    async def items(self, call: Call[Page[T]]) -> AsyncIterator[T]:
        next_call: Call[Page[T]] | None = call
        while next_call is not None:
            page = await self.run(next_call)
            for item in page.items:
                yield item
            next_call = None if page.links.next is None else call.at(page.links.next)

    @asynccontextmanager
    async def stream(self, call: Call[None]) -> AsyncIterator[httpx.Response]:
        response = await self.http.send(build_request(self.http, call, None), stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def poll(
        self, read: Callable[[], Awaitable[R]], ended: Callable[[R], bool], deadline: Deadline
    ) -> R:
        while True:
            value = await read()
            if ended(value):
                return value
            deadline.check()
            await asyncio.sleep(deadline.sleep_for(self.settings.poll_interval))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        await self.http.aclose()
