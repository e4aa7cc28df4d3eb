"""One HTTP exchange, described without doing any I/O, so the sync and async clients share it.

An operation (``batchcam_client.operations``) returns a :class:`Call`: the request to make and how to
read its answer. :func:`exchange` is the whole policy around it (the idempotency key, retries and
their delays, problem+json errors, parsing) as a generator that yields what to do next (send this
request, or sleep this long) and receives what happened; ``sync.transport`` and ``aio.transport``
only carry those steps out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx

from batchcam_client.errors import TransportError, error_from_response
from batchcam_client.retrying import RetryPolicy

T = TypeVar("T")
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Multipart parts as httpx takes them: (field, (file name, readable, media type)).
FilePart = tuple[str, tuple[str, Any, str]]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str  # relative to the service's URL, or absolute (a page's ``links.next``)
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    # Called once per attempt: a retried upload starts again from the first byte.
    files: Callable[[], Sequence[FilePart]] | None = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    submits: bool = False  # a creating POST: carries an Idempotency-Key, the same on every retry

    def at(self, url: str) -> Call[T]:
        """The same call to another URL (the next page: its cursor is in the URL)."""
        return replace(self, path=url, params=None)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = httpx.Request | Sleep
Outcome = httpx.Response | httpx.TransportError | None


def build_request(
    client: httpx.Client | httpx.AsyncClient, call: Call[Any], key: str | None
) -> httpx.Request:
    headers = dict(call.headers)
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    return client.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        files=call.files() if call.files else None,
        data=call.form,
        headers=headers,
    )


def exchange(
    call: Call[T], policy: RetryPolicy, build: Callable[[str | None], httpx.Request]
) -> Generator[Step, Outcome, T]:
    """Yields requests (answered with the read response or the transport error) and sleeps (answered
    with None); returns the parsed result or raises the call's error."""
    key = str(uuid.uuid4()) if call.submits else None
    attempt = 0
    while True:
        attempt += 1
        outcome = yield build(key)
        if isinstance(outcome, httpx.TransportError):
            delay = policy.after_error(attempt)
            if delay is None:
                raise TransportError(
                    f"{type(outcome).__name__} after {attempt} attempts: {outcome}", code="transport_error"
                ) from outcome
        elif isinstance(outcome, httpx.Response):
            delay = policy.after_response(attempt, outcome)
            if delay is None:
                return finish(call, outcome)
        else:
            raise TypeError(f"a request must be answered with a response or an error, not {outcome!r}")
        yield Sleep(delay)


def finish(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_from_response(response)
    return call.parse(response)
