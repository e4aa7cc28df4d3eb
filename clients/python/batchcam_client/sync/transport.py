"""The blocking shell around ``calls.exchange``: it sends what the exchange asks and sleeps when told."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx

from batchcam_client.calls import Call, Outcome, Sleep, build_request, exchange
from batchcam_client.following import Deadline
from batchcam_client.resources.base import Page
from batchcam_client.settings import ClientSettings

T = TypeVar("T")
R = TypeVar("R")


class Transport:
    def __init__(self, settings: ClientSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.http = httpx.Client(**settings.http_options(), transport=transport)

    def run(self, call: Call[T]) -> T:
        steps = exchange(call, self.settings.retry, lambda key: build_request(self.http, call, key))
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                outcome = None
            else:
                outcome = self._send(step)

    def _send(self, request: httpx.Request) -> Outcome:
        try:
            return self.http.send(request)
        except httpx.TransportError as error:
            return error

    def items(self, call: Call[Page[T]]) -> Iterator[T]:
        """Every item of every page, fetching the next page (``links.next``) only when needed."""
        next_call: Call[Page[T]] | None = call
        while next_call is not None:
            page = self.run(next_call)
            yield from page.items
            next_call = None if page.links.next is None else call.at(page.links.next)

    @contextmanager
    def stream(self, call: Call[None]) -> Iterator[httpx.Response]:
        response = self.http.send(build_request(self.http, call, None), stream=True)
        try:
            yield response
        finally:
            response.close()

    def poll(self, read: Callable[[], R], ended: Callable[[R], bool], deadline: Deadline) -> R:
        while True:
            value = read()
            if ended(value):
                return value
            deadline.check()
            time.sleep(deadline.sleep_for(self.settings.poll_interval))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        self.http.close()
