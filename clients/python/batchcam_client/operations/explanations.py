"""Explanations: ``/v1/models/{id}/explanations`` and ``/v1/explanations``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from batchcam_client.calls import Call, FilePart
from batchcam_client.operations.common import Id, page_params, parsed, segment
from batchcam_client.payloads import Png, array_of, encoded_image, png_of
from batchcam_client.resources.base import Page
from batchcam_client.resources.explanations import Explanation, ExplanationState, ExplanationSummary
from batchcam_client.spec import CamMethod, DatasetExplanation, FaithfulnessMetric

if TYPE_CHECKING:
    import numpy as np

MAX_WAIT_SECONDS = 30.0  # the service holds a submission open at most this long


def submit_images(
    model_id: Id,
    images: Sequence[Any],
    *,
    targets: Sequence[int | None] | None = None,
    method: CamMethod = "gradcam",
    metrics: Sequence[FaithfulnessMetric] = (),
    wait: float | None = None,
) -> Call[Explanation]:
    """Uploads: paths, PNG/JPEG bytes, PIL images or numpy arrays (encoded as PNG here)."""
    encoded = [encoded_image(image, position) for position, image in enumerate(images)]
    form: dict[str, str] = {"method": method}
    if targets is not None:
        form["targets"] = json.dumps(list(targets))
    if metrics:
        form["metrics"] = ",".join(metrics)

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


def heatmap_png(
    explanation_id: Id,
    index: int,
    *,
    style: Literal["overlay", "raw"] = "overlay",
    colormap: str | None = None,
    scale: int = 1,
) -> Call[Png]:
    params: dict[str, Any] = {"style": style, "scale": scale}
    if colormap is not None:
        params["colormap"] = colormap
    path = f"/v1/explanations/{segment(explanation_id)}/heatmaps/{segment(index)}.png"
    return Call("GET", path, png_of, params=params, headers={"Accept": "image/png"})


def heatmap_array(explanation_id: Id, index: int) -> Call[np.ndarray]:
    path = f"/v1/explanations/{segment(explanation_id)}/heatmaps/{segment(index)}.npy"
    return Call("GET", path, array_of)


def _wait(wait: float | None) -> dict[str, float] | None:
    return None if wait is None else {"wait": max(0.0, min(wait, MAX_WAIT_SECONDS))}
