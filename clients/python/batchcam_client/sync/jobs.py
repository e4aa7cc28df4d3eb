"""``client.jobs``: submit, read, list, cancel, follow."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import httpx

from batchcam_client.errors import TransportError
from batchcam_client.following import Deadline, StreamFollower
from batchcam_client.operations import jobs as ops
from batchcam_client.operations.common import Id
from batchcam_client.resources.jobs import Job, JobEvent, JobMetrics, JobState
from batchcam_client.spec import JobSpec
from batchcam_client.sync.transport import Transport


class Jobs:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def submit(self, spec: JobSpec | None = None, **options: object) -> Job:
        """``submit(JobSpec(...))`` or ``submit(dataset=..., epochs=...)``."""
        return self._transport.run(ops.submit(spec or JobSpec.model_validate(options)))

    def get(self, job_id: Id) -> Job:
        return self._transport.run(ops.get(job_id))

    def list(self, *, state: Iterable[JobState | str] | None = None, page_size: int = 50) -> Iterator[Job]:
        """Newest first, across pages (fetched as the iteration reaches them)."""
        return self._transport.items(ops.page(state, page_size))

    def cancel(self, job_id: Id) -> Job:
        return self._transport.run(ops.cancel(job_id))

    def metrics(self, job_id: Id) -> JobMetrics:
        return self._transport.run(ops.metrics(job_id))

    def events(
        self, job_id: Id, *, last_event_id: int | None = None, timeout: float | None = None
    ) -> Iterator[JobEvent]:
        """The job's events until it ends, reconnecting after a dropped connection with
        ``Last-Event-ID`` (nothing stored is missed or repeated). ``timeout`` raises WaitTimeout,
        checked at every event and keep-alive (at least every 15 s)."""
        follower = StreamFollower(
            self._transport.settings.retry, Deadline(timeout, f"job {job_id}"), last_event_id
        )
        while not follower.ended:
            error: Exception | None = None
            try:
                with self._transport.stream(ops.events(job_id, follower.headers())) as response:
                    if response.status_code != 200:
                        response.read()
                    follower.connected(response)
                    for line in response.iter_lines():
                        if (event := follower.feed(line)) is not None:
                            yield event
            except httpx.TransportError as dropped:
                error = dropped
            if not follower.ended:
                self._transport.sleep(follower.reconnect_delay(error))

    def wait(
        self, job_id: Id, *, timeout: float | None = None, on_event: Callable[[JobEvent], None] | None = None
    ) -> Job:
        """The job once it has ended: follows its events (``on_event`` sees each), and polls instead
        if the stream cannot be kept up. Raises WaitTimeout after ``timeout`` seconds."""
        deadline = Deadline(timeout, f"job {job_id}")
        try:
            for event in self.events(job_id, timeout=timeout):
                if on_event is not None:
                    on_event(event)
        except TransportError:
            pass  # no stream: polling below still learns the end
        return self._transport.poll(lambda: self.get(job_id), lambda job: job.terminal, deadline)
