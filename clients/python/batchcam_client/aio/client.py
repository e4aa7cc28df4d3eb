"""The asyncio client: the blocking client's methods, awaited (``list`` and ``events`` are async
iterators)."""

from __future__ import annotations

from types import TracebackType
from typing import Unpack

import httpx

from batchcam_client.aio.datasets import AsyncDatasets
from batchcam_client.aio.explanations import AsyncExplanations
from batchcam_client.aio.jobs import AsyncJobs
from batchcam_client.aio.models import AsyncModels
from batchcam_client.aio.transport import AsyncTransport
from batchcam_client.settings import ClientOptions, ClientSettings


class AsyncClient:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        settings = ClientSettings.resolve(url, api_key, **options)
        self._transport = AsyncTransport(settings, transport)
        self.jobs = AsyncJobs(self._transport)
        self.datasets = AsyncDatasets(self._transport)
        self.models = AsyncModels(self._transport)
        self.explanations = AsyncExplanations(self._transport)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()
