"""Trained models and their artifacts: ``/v1/models``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from batchcam_client.calls import Call
from batchcam_client.operations.common import Id, page_params, parsed, parsed_json, segment
from batchcam_client.payloads import Png, png_of
from batchcam_client.resources.base import Page
from batchcam_client.resources.models import Model

Figure = Literal[
    "prototypes", "cam-prototypes", "misclassified", "training-curves", "cam-examples", "faithfulness"
]
PNG = {"Accept": "image/png"}


def get(model_id: Id) -> Call[Model]:
    return Call("GET", f"/v1/models/{segment(model_id)}", parsed(Model))


def page(limit: int = 50) -> Call[Page[Model]]:
    return Call("GET", "/v1/models", parsed(Page[Model]), params=page_params(limit))


def report(model_id: Id) -> Call[dict[str, Any]]:
    return Call("GET", f"/v1/models/{segment(model_id)}/report", parsed_json)


def prototype(model_id: Id, class_index: int) -> Call[Png]:
    path = f"/v1/models/{segment(model_id)}/prototypes/{segment(class_index)}.png"
    return Call("GET", path, png_of, headers=PNG)


def cam_prototype(model_id: Id, class_index: int) -> Call[Png]:
    path = f"/v1/models/{segment(model_id)}/cam-prototypes/{segment(class_index)}.png"
    return Call("GET", path, png_of, headers=PNG)


def figure(model_id: Id, name: Figure) -> Call[Png]:
    return Call("GET", f"/v1/models/{segment(model_id)}/figures/{segment(name)}.png", png_of, headers=PNG)


def weights(model_id: Id, path: str | Path) -> Call[Path]:
    """The safetensors file, written to ``path`` (read whole first: a partial file is never left)."""
    return Call("GET", f"/v1/models/{segment(model_id)}/weights", _writer(Path(path)))


def _writer(path: Path) -> Callable[[httpx.Response], Path]:
    def write(response: httpx.Response) -> Path:
        path.write_bytes(response.content)
        return path

    return write
