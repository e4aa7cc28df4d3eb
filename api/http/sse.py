"""Server-Sent Events: replay what is stored after the client's last event, then follow new ones.

The stream reads the database (the source of truth, so a reconnecting client with ``Last-Event-ID``
misses nothing) whenever a change notification for its source arrives (``persistence.notifications``),
and otherwise every ``poll_seconds`` while notifications are down (SQLite, a reconnecting listener)
or every ``NOTIFIED_POLL_SECONDS`` as a fallback while they flow. It sends a comment as heartbeat when
idle so proxies keep the connection open, and ends after the event that ends the story. A source
may also report a live snapshot (a job's progress): it is sent without an id whenever it changes, so
it never moves the client's ``Last-Event-ID`` and is not replayed.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.context import StreamTimings
from persistence.notifications import ChangeListener, Channel, wait_for_change

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = b": keep-alive\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
NOTIFIED_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Source:
    """Where the notifications that concern a stream arrive: a channel, and the row's id on it."""

    changes: ChangeListener
    channel: Channel
    key: str


@dataclass(frozen=True)
class StreamEvent:
    id: int | None  # None: a snapshot, not a stored event (no resume point)
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class EventBatch:
    events: list[StreamEvent]
    finished: bool  # nothing will follow these events (checked before they were read)
    snapshot: StreamEvent | None = None  # the live state now, sent when it differs from the last one


def format_event(event: StreamEvent) -> bytes:
    payload = json.dumps(event.data, separators=(",", ":"), default=str)  # one line: no newlines inside
    id_line = "" if event.id is None else f"id: {event.id}\n"
    return f"{id_line}event: {event.type}\ndata: {payload}\n\n".encode()


async def event_stream(
    fetch_after: Callable[[int], EventBatch],
    *,
    after: int,
    timings: StreamTimings,
    is_last: Callable[[StreamEvent], bool],
    access_ended: Callable[[], StreamEvent | None],
    source: Source,
) -> AsyncIterator[bytes]:
    """Events with ids above ``after`` until ``is_last`` says so or the source is finished.

    Every ``timings.key_recheck_seconds`` ``access_ended`` is asked (a blocking read, off
    the event loop); an event it returns is sent last, and the stream ends."""
    yield f"retry: {timings.client_retry_ms}\n\n".encode()
    last_sent = last_checked = time.monotonic()
    shown: StreamEvent | None = None
    with source.changes.watch(source.channel, source.key) as changed:  # before the first read
        while True:
            if time.monotonic() - last_checked >= timings.key_recheck_seconds:
                refusal = await run_in_threadpool(access_ended)
                last_checked = time.monotonic()
                if refusal is not None:
                    yield format_event(refusal)
                    return
            batch = await run_in_threadpool(fetch_after, after)  # a blocking read, off the event loop
            for event in batch.events:
                yield format_event(event)
                last_sent = time.monotonic()
                after = after if event.id is None else event.id
                if is_last(event):
                    return
            if batch.finished:
                return
            if batch.snapshot != shown:  # a snapshot that went away resets, so its return is sent again
                shown = batch.snapshot
                if shown is not None:
                    yield format_event(shown)
                    last_sent = time.monotonic()
            if time.monotonic() - last_sent >= timings.heartbeat_seconds:
                yield HEARTBEAT
                last_sent = time.monotonic()
            pause = NOTIFIED_POLL_SECONDS if source.changes.live else timings.poll_seconds
            # Woken early by a notification; never later than a heartbeat or the key's recheck is due.
            due = min(last_sent + timings.heartbeat_seconds, last_checked + timings.key_recheck_seconds)
            await wait_for_change(changed, min(pause, max(due - time.monotonic(), 0.0)))
