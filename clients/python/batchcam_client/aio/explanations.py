"""``async_client.explanations``: CAMs of uploaded or dataset images, and their heatmaps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from batchcam_client.aio.transport import AsyncTransport
from batchcam_client.following import Deadline
from batchcam_client.operations import explanations as ops
from batchcam_client.operations.common import Id
from batchcam_client.operations.explanations import ImageOptions, PngOptions
from batchcam_client.payloads import Png
from batchcam_client.resources.explanations import Explanation, ExplanationState, ExplanationSummary
from batchcam_client.spec import DatasetExplanation

if TYPE_CHECKING:
    import numpy as np


class AsyncExplanations:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def submit(
        self, model_id: Id, images: Sequence[Any], **options: Unpack[ImageOptions]
    ) -> Explanation:
        """Explain images: paths, PNG/JPEG bytes, PIL images or numpy arrays."""
        return await self._transport.run(ops.submit_images(model_id, images, **options))

    async def submit_dataset(
        self, model_id: Id, request: DatasetExplanation, *, wait: float | None = None
    ) -> Explanation:
        return await self._transport.run(ops.submit_dataset(model_id, request, wait=wait))

    async def get(self, explanation_id: Id) -> Explanation:
        return await self._transport.run(ops.get(explanation_id))

    async def wait(self, explanation_id: Id, *, timeout: float | None = None) -> Explanation:
        deadline = Deadline(timeout, f"explanation {explanation_id}")
        return await self._transport.poll(lambda: self.get(explanation_id), lambda e: e.terminal, deadline)

    def list(
        self,
        *,
        state: Iterable[ExplanationState | str] | None = None,
        model_id: Id | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[ExplanationSummary]:
        return self._transport.items(ops.page(state, model_id, page_size))

    async def cancel(self, explanation_id: Id) -> Explanation:
        return await self._transport.run(ops.cancel(explanation_id))

    async def heatmap(self, explanation_id: Id, index: int) -> np.ndarray:
        """Item ``index``'s CAM as a float array in [0, 1] (the ``.npy`` the service stores)."""
        return await self._transport.run(ops.heatmap_array(explanation_id, index))

    async def heatmap_png(self, explanation_id: Id, index: int, **options: Unpack[PngOptions]) -> Png:
        return await self._transport.run(ops.heatmap_png(explanation_id, index, **options))
