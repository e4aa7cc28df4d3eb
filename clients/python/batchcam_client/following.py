"""What the sync and async clients share to follow a job: a deadline, and the bookkeeping of an event
stream that resumes after a dropped connection with ``Last-Event-ID``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from batchcam_client.errors import TransportError, Unauthorized, WaitTimeout, error_from_response
from batchcam_client.resources.jobs import JobEvent
from batchcam_client.retrying import RetryPolicy
from batchcam_client.sse import SseDecoder

LAST_EVENT_ID = "Last-Event-ID"


class Deadline:
    def __init__(self, timeout: float | None, what: str) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout
        self._timeout, self._what = timeout, what

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def check(self) -> None:
        if self._end is not None and time.monotonic() >= self._end:
            raise WaitTimeout(
                f"{self._what} has not ended after {self._timeout:g} s; it goes on on the service",
                code="wait_timeout",
            )

    def sleep_for(self, seconds: float) -> float:
        remaining = self.remaining()
        return seconds if remaining is None else min(seconds, remaining)


@dataclass
class StreamFollower:
    """Where a job's stream is: the last stored event seen, whether the story has ended, and how many
    reconnections in a row have failed (reset by every event that arrives). The transports only read
    lines and sleep; this decides what the lines mean and when to give up."""

    policy: RetryPolicy
    deadline: Deadline
    last_event_id: int | None = None
    ended: bool = False
    failures: int = 0
    decoder: SseDecoder = field(default_factory=SseDecoder)

    def connected(self, response: httpx.Response) -> None:
        """A (re)connection answered; its body is read already when it is not a 200."""
        if response.status_code != 200:
            self.refused(response)
        self.decoder = SseDecoder()

    def feed(self, line: str) -> JobEvent | None:
        """The event this line completes, if any (WaitTimeout once the deadline has passed)."""
        self.deadline.check()
        event = self.decoder.feed(line)
        return None if event is None else self.seen(event)

    def reconnect_delay(self, error: Exception | None) -> float:
        self.deadline.check()
        return self.deadline.sleep_for(self.dropped(error))

    def headers(self) -> dict[str, str]:
        return {} if self.last_event_id is None else {LAST_EVENT_ID: str(self.last_event_id)}

    def seen(self, event: JobEvent) -> JobEvent:
        self.failures = 0
        if event.id is not None:
            self.last_event_id = event.id
        if event.type == "unauthorized":
            raise Unauthorized(str(event.data.get("detail")), code="unauthorized", status=401)
        self.ended = self.ended or event.ends_stream
        return event

    def dropped(self, error: Exception | None) -> float:
        """The delay before reconnecting, or TransportError once the retries are spent. ``error`` is
        None when the server closed the stream cleanly before the job ended (a restart)."""
        self.failures += 1
        delay = self.policy.after_error(self.failures)
        if delay is None:
            raise TransportError(
                f"the event stream dropped {self.failures} times in a row: {error or 'closed early'}",
                code="transport_error",
            ) from error
        return delay

    @staticmethod
    def refused(response: httpx.Response) -> None:
        """A stream answered with an error: raise it, unless it is worth reconnecting (a 429 or a
        gateway's 502–504), in which case the transport error makes the caller back off and retry."""
        if response.status_code not in (429, 502, 503, 504):
            raise error_from_response(response)
        raise httpx.RemoteProtocolError(f"the event stream answered {response.status_code}")
