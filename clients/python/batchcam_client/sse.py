"""A Server-Sent Events decoder (the WHATWG rules the service's streams use), fed one line at a time.

Written here rather than taken from httpx-sse because following a job needs to see the stream's
keep-alive comments too: they are the moments at which ``wait(timeout=…)`` can give up on a job
that sends nothing, and that package swallows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from batchcam_client.resources.jobs import JobEvent


@dataclass
class SseDecoder:
    _id: str | None = None
    _type: str = ""
    _data: list[str] = field(default_factory=list)
    retry_ms: int | None = None

    def feed(self, line: str) -> JobEvent | None:
        """The event a blank line completes, else None (field lines, comments, ``retry``)."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> JobEvent | None:
        data, kind, event_id = "\n".join(self._data), self._type or "message", self._id
        self._data, self._type, self._id = [], "", None
        if not data:
            return None
        parsed = json.loads(data)
        return JobEvent(
            id=int(event_id) if event_id and event_id.isdigit() else None,
            type=kind,
            data=parsed if isinstance(parsed, dict) else {"value": parsed},
        )
