"""``async_client.jobs``: submit, read, list, cancel, follow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import httpx

from batchcam_client.aio.transport import AsyncTransport
from batchcam_client.errors import TransportError
from batchcam_client.following import Deadline, StreamFollower
from batchcam_client.operations import jobs as ops
from batchcam_client.operations.common import Id
from batchcam_client.resources.jobs import Job, JobEvent, JobMetrics, JobState
from batchcam_client.spec import JobSpec


class AsyncJobs:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def submit(self, spec: JobSpec | None = None, **options: object) -> Job:
        """``submit(JobSpec(...))`` or ``submit(dataset=..., epochs=...)``."""
        return await self._transport.run(ops.submit(spec or JobSpec.model_validate(options)))

    async def get(self, job_id: Id) -> Job:
        return await self._transport.run(ops.get(job_id))

    def list(
        self, *, state: Iterable[JobState | str] | None = None, page_size: int = 50
    ) -> AsyncIterator[Job]:
        """Newest first, across pages (fetched as the iteration reaches them)."""
        return self._transport.items(ops.page(state, page_size))

    async def cancel(self, job_id: Id) -> Job:
        return await self._transport.run(ops.cancel(job_id))

    async def metrics(self, job_id: Id) -> JobMetrics:
        return await self._transport.run(ops.metrics(job_id))

    async def events(
        self, job_id: Id, *, last_event_id: int | None = None, timeout: float | None = None
    ) -> AsyncIterator[JobEvent]:
        """As ``Jobs.events``, asynchronously."""
        follower = StreamFollower(
            self._transport.settings.retry, Deadline(timeout, f"job {job_id}"), last_event_id
        )
        while not follower.ended:
            error: Exception | None = None
            try:
                async with self._transport.stream(ops.events(job_id, follower.headers())) as response:
                    if response.status_code != 200:
                        await response.aread()
                    follower.connected(response)
                    async for line in response.aiter_lines():
                        if (event := follower.feed(line)) is not None:
                            yield event
            except httpx.TransportError as dropped:
                error = dropped
            if not follower.ended:
                await self._transport.sleep(follower.reconnect_delay(error))

    async def wait(
        self, job_id: Id, *, timeout: float | None = None, on_event: Callable[[JobEvent], None] | None = None
    ) -> Job:
        """As ``Jobs.wait``, asynchronously."""
        deadline = Deadline(timeout, f"job {job_id}")
        try:
            async for event in self.events(job_id, timeout=timeout):
                if on_event is not None:
                    on_event(event)
        except TransportError:
            pass  # no stream: polling below still learns the end
        return await self._transport.poll(lambda: self.get(job_id), lambda job: job.terminal, deadline)
