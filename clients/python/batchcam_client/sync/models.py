"""``client.models``: trained models, their report, pictures and weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchcam_client.operations import models as ops
from batchcam_client.operations.common import Id
from batchcam_client.payloads import Png
from batchcam_client.resources.models import Model
from batchcam_client.sync.transport import Transport


class Models:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def get(self, model_id: Id) -> Model:
        return self._transport.run(ops.get(model_id))

    def list(self, *, page_size: int = 50) -> Iterator[Model]:
        return self._transport.items(ops.page(page_size))

    def report(self, model_id: Id) -> dict[str, Any]:
        return self._transport.run(ops.report(model_id))

    def prototype(self, model_id: Id, class_index: int) -> Png:
        """The class prototype (``.image()`` decodes it with Pillow)."""
        return self._transport.run(ops.prototype(model_id, class_index))

    def cam_prototype(self, model_id: Id, class_index: int) -> Png:
        return self._transport.run(ops.cam_prototype(model_id, class_index))

    def figure(self, model_id: Id, name: ops.Figure) -> Png:
        return self._transport.run(ops.figure(model_id, name))

    def download_weights(self, model_id: Id, path: str | Path) -> Path:
        return self._transport.run(ops.weights(model_id, path))
