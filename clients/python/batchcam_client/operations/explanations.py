"""Explanations: ``/v1/models/{id}/explanations`` and ``/v1/explanations``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from batchcam_client.calls import Call, FilePart
from batchcam_client.operations.common import Id, page_params, parsed, segment
from batchcam_client.payloads import Png, array_of, encoded_image, png_of
from batchcam_client.resources.base import Page
from batchcam_client.resources.explanations import Explanation, ExplanationState, ExplanationSummary
from batchcam_client.spec import CamMethod, DatasetExplanation, FaithfulnessMetric

if TYPE_CHECKING:
    import numpy as np

MAX_WAIT_SECONDS = 30.0  # the service holds a submission open at most this long


class ImageOptions(TypedDict, total=False):
    targets: Sequence[int | None] | None  # one class per image; None: the predicted class
    method: CamMethod  # default gradcam
    metrics: Sequence[FaithfulnessMetric]  # faithfulness scores to add to each item
    wait: float | None  # let the service answer with the result if it ends this soon (≤ 30 s)


def submit_images(model_id: Id, images: Sequence[Any], **options: Unpack[ImageOptions]) -> Call[Explanation]:
    """Uploads: paths, PNG/JPEG bytes, PIL images or numpy arrays (encoded as PNG here)."""
    encoded = [encoded_image(image, position) for position, image in enumerate(images)]
    form: dict[str, str] = {"method": options.get("method", "gradcam")}
    targets, metrics = options.get("targets"), options.get("metrics")
    if targets is not None:
        form["targets"] = json.dumps(list(targets))
    if metrics:
        form["metrics"] = ",".join(metrics)
    wait = options.get("wait")

    def files() -> Sequence[FilePart]:
        return [("files", (name, content, kind)) for name, content, kind in encoded]

    path = f"/v1/models/{segment(model_id)}/explanations"
    return Call("POST", path, parsed(Explanation), params=_wait(wait), files=files, form=form, submits=True)


def submit_dataset(
    model_id: Id, request: DatasetExplanation, *, wait: float | None = None
) -> Call[Explanation]:
    path = f"/v1/models/{segment(model_id)}/explanations"
    return Call("POST", path, parsed(Explanation), params=_wait(wait), json=request.body(), submits=True)


def get(explanation_id: Id) -> Call[Explanation]:
    return Call("GET", f"/v1/explanations/{segment(explanation_id)}", parsed(Explanation))


def page(
    state: Iterable[ExplanationState | str] | None = None, model_id: Id | None = None, limit: int = 50
) -> Call[Page[ExplanationSummary]]:
    states = [ExplanationState(value).value for value in state or ()]
    params = page_params(limit, state=states, model_id=None if model_id is None else str(model_id))
    return Call("GET", "/v1/explanations", parsed(Page[ExplanationSummary]), params=params)


def cancel(explanation_id: Id) -> Call[Explanation]:
    return Call("POST", f"/v1/explanations/{segment(explanation_id)}/cancel", parsed(Explanation))


class PngOptions(TypedDict, total=False):
    style: Literal["overlay", "raw"]  # overlay (default): colormap over the image; raw: round(CAM × 255)
    colormap: str  # a matplotlib colormap name (overlay only; the service's default is jet)
    scale: int  # nearest-neighbour upscaling, 1–16


def heatmap_png(explanation_id: Id, index: int, **options: Unpack[PngOptions]) -> Call[Png]:
    params: dict[str, Any] = dict(options)
    path = f"/v1/explanations/{segment(explanation_id)}/heatmaps/{segment(index)}.png"
    return Call("GET", path, png_of, params=params, headers={"Accept": "image/png"})


def heatmap_array(explanation_id: Id, index: int) -> Call[np.ndarray]:
    path = f"/v1/explanations/{segment(explanation_id)}/heatmaps/{segment(index)}.npy"
    return Call("GET", path, array_of)


def _wait(wait: float | None) -> dict[str, float] | None:
    return None if wait is None else {"wait": max(0.0, min(wait, MAX_WAIT_SECONDS))}
