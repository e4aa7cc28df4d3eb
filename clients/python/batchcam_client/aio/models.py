"""``async_client.models``: trained models, their report, pictures and weights."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from batchcam_client.aio.transport import AsyncTransport
from batchcam_client.operations import models as ops
from batchcam_client.operations.common import Id
from batchcam_client.payloads import Png
from batchcam_client.resources.models import Model


class AsyncModels:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def get(self, model_id: Id) -> Model:
        return await self._transport.run(ops.get(model_id))

    def list(self, *, page_size: int = 50) -> AsyncIterator[Model]:
        return self._transport.items(ops.page(page_size))

    async def report(self, model_id: Id) -> dict[str, Any]:
        return await self._transport.run(ops.report(model_id))

    async def prototype(self, model_id: Id, class_index: int) -> Png:
        """The class prototype (``.image()`` decodes it with Pillow)."""
        return await self._transport.run(ops.prototype(model_id, class_index))

    async def cam_prototype(self, model_id: Id, class_index: int) -> Png:
        return await self._transport.run(ops.cam_prototype(model_id, class_index))

    async def figure(self, model_id: Id, name: ops.Figure) -> Png:
        return await self._transport.run(ops.figure(model_id, name))

    async def download_weights(self, model_id: Id, path: str | Path) -> Path:
        return await self._transport.run(ops.weights(model_id, path))
