"""Explanations at the HTTP boundary: the request (dataset indices; uploads are multipart) and the result."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.http.pages import PageLinks
from api.jobs.schemas import schema_extension
from api.models.schemas import ClassRef
from batchcam.spec.image_metrics import IMAGE_METRIC_INFO, IMAGE_METRICS
from batchcam.spec.names import CAM_METHOD_NAMES
from persistence.states import TERMINAL_STATES, FailureReason, JobState

DEFAULT_METHOD = "gradcam"
TERMINAL_STATE_NAMES = sorted(state.value for state in TERMINAL_STATES)

if TYPE_CHECKING:
    ExplanationState = JobState
else:
    # The lifecycle is the jobs' (``persistence.states``); the HTTP contract names it per resource, so
    # a generated client keeps an ``ExplanationState`` type of its own. Same values, same members.
    ExplanationState = StrEnum(
        "ExplanationState", {state.name: state.value for state in JobState}, module=__name__
    )

METHOD_DESCRIPTION = f"CAM method: one of {', '.join(CAM_METHOD_NAMES)}."
METRICS_DESCRIPTION = (
    "Faithfulness metrics to score each heatmap with, each beside a random map's score on the same image: "
    + "; ".join(
        f"{name}: {info.meaning} ({info.better} is better)" for name, info in IMAGE_METRIC_INFO.items()
    )
    + ". Omit for none; each costs a few dozen forward passes per image."
)
TARGETS_DESCRIPTION = (
    "One class index per image to explain (null = the predicted class); omit to explain the predictions."
)


class DatasetExplanationRequest(BaseModel):
    """Explain images of a dataset by position (JSON). To explain your own images, send them as
    multipart/form-data instead: ``files`` (PNG/JPEG, or .npz of many, repeatable), optional ``targets``
    (a JSON array) and ``method``."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        min_length=1,
        max_length=200,
        description="A built-in dataset's name or the id of one of your uploads.",
    )
    split: Literal["train", "test"] = Field("test", description="Which split the indices point into.")
    indices: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=1, description="Positions in the split (the split as the model's training job saw it)."
    )
    targets: list[int | None] | None = Field(None, description=TARGETS_DESCRIPTION)
    method: str = Field(
        DEFAULT_METHOD,
        description=METHOD_DESCRIPTION,
        json_schema_extra=schema_extension("enum", CAM_METHOD_NAMES),
    )
    metrics: list[Annotated[str, Field(json_schema_extra=schema_extension("enum", IMAGE_METRICS))]] = Field(
        default_factory=list, max_length=len(IMAGE_METRICS), description=METRICS_DESCRIPTION
    )


class ItemError(BaseModel):
    code: str = Field(description="Stable machine-readable kind of the error.")
    message: str


class ItemSource(BaseModel):
    kind: Literal["upload", "dataset"]
    filename: str | None = Field(None, description="An uploaded image's file name.")
    dataset: str | None = None
    split: str | None = None
    index: int | None = Field(None, description="Position in the dataset's split.")


class ItemLinks(BaseModel):
    overlay: str = Field(description="The heatmap over the image (PNG); add ?colormap=NAME.")
    raw: str = Field(description="The heatmap as grayscale, value = round(CAM × 255) (PNG).")
    array: str = Field(description="The CAM as a float32 H×W NumPy .npy file, values in [0, 1].")


class FaithfulnessCurve(BaseModel):
    fractions: list[float] = Field(description="Share of the image's pixels perturbed at each point.")
    values: list[float] = Field(description="The target class's probability at each point.")


class FaithfulnessScore(BaseModel):
    score: float = Field(
        description="The heatmap's score: area under the curve (deletion, insertion) or its mean (ROAD)."
    )
    random: float = Field(
        description="The same measure for a random map on the same image and target (random draws are "
        "seeded per batch of the request, so compare heatmaps scored together)."
    )
    better: Literal["lower", "higher"] = Field(description="Which direction means a more faithful heatmap.")
    curve: FaithfulnessCurve


class ExplanationItem(BaseModel):
    index: int = Field(description="Position of the image in the request.")
    source: ItemSource
    predicted: ClassRef | None = None
    confidence: float | None = Field(None, description="The probability of the predicted class.")
    probabilities: list[float] | None = Field(None, description="Softmax probabilities, by class index.")
    target: ClassRef | None = Field(None, description="The class the CAM explains.")
    true_label: ClassRef | None = Field(None, description="The dataset's label (dataset images only).")
    distance_to_predicted: dict[str, float] | None = Field(
        None, description="Per metric: the CAM against the predicted class's prototype."
    )
    distance_to_target: dict[str, float] | None = Field(
        None, description="Per metric: the CAM against the target class's prototype."
    )
    distance_to_true: dict[str, float] | None = Field(
        None, description="Per metric: the CAM against the true class's prototype (dataset images only)."
    )
    faithfulness: dict[str, FaithfulnessScore] | None = Field(
        None,
        description="Per requested metric (the request's `metrics`): the heatmap's score and a random map's.",
    )
    error: ItemError | None = Field(None, description="Why this image could not be explained.")
    links: ItemLinks | None = None


class ExplanationFailure(BaseModel):
    reason: FailureReason
    message: str | None = None


class ExplanationLinks(BaseModel):
    explanation: str
    model: str


class ExplanationSummary(BaseModel):
    """An explanation without its per-image results (what lists show)."""

    id: uuid.UUID
    model_id: uuid.UUID
    state: ExplanationState = Field(
        description=(
            "queued → running → succeeded | failed; a cancel ends a queued one as cancelled and moves a "
            "running one to cancelling, then cancelled (or succeeded if its last batch finished first). "
            "A succeeded explanation may hold per-item errors. "
            f"Terminal states: {', '.join(TERMINAL_STATE_NAMES)}."
        ),
        json_schema_extra=schema_extension("x-terminal-states", TERMINAL_STATE_NAMES),
    )
    terminal: bool
    method: str
    count: int = Field(description="Images in the request.")
    metrics: list[str] = Field(
        description="The faithfulness metrics asked for (see each item's `faithfulness`)."
    )
    failure: ExplanationFailure | None
    attempt: int
    created_at: datetime
    finished_at: datetime | None
    links: ExplanationLinks


class ExplanationResource(ExplanationSummary):
    failed_items: int = Field(description="Images that could not be explained (see each item's error).")
    items: list[ExplanationItem] = Field(description="One per image, once the explanation has succeeded.")


class ExplanationPage(BaseModel):
    """Newest first; without per-image results (read an explanation for those)."""

    items: list[ExplanationSummary]
    next_cursor: str | None
    links: PageLinks
