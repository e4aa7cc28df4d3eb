"""``async_client.datasets``: upload, read, list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Unpack

from batchcam_client.aio.transport import AsyncTransport
from batchcam_client.operations import datasets as ops
from batchcam_client.operations.common import Id
from batchcam_client.operations.datasets import UploadOptions
from batchcam_client.resources.datasets import Dataset


class AsyncDatasets:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def upload(self, source: str | Path | bytes, **options: Unpack[UploadOptions]) -> Dataset:
        """A ``.npz`` or class-folder ``.zip`` (path or bytes); ``progress(sent, total)`` as it goes."""
        return await self._transport.run(ops.upload(source, **options))

    async def get(self, dataset_id: Id) -> Dataset:
        return await self._transport.run(ops.get(dataset_id))

    def list(self, *, page_size: int = 50) -> AsyncIterator[Dataset]:
        return self._transport.items(ops.page(page_size))
