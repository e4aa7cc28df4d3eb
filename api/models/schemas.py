"""Trained models at the HTTP boundary: what was built, how it did, where its artifacts are."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.http.pages import PageLinks


class ModelInput(BaseModel):
    """What the model takes. Uploaded images of another size or channel count are converted."""

    channels: int = Field(description="1 (grayscale) or 3 (RGB).")
    height: int
    width: int


class ClassLinks(BaseModel):
    prototype: str = Field(description="The class prototype (mean training image) as a grayscale PNG.")
    cam_prototype: str = Field(description="The class's CAM prototype (mean test CAM) as a heatmap PNG.")


class ModelClass(BaseModel):
    index: int
    name: str
    links: ClassLinks


class MapAndReferences(BaseModel):
    map: float = Field(description="The CAMs' score.")
    random: float = Field(description="A random map's score on the same images.")
    uniform: float | None = Field(None, description="A uniform map's (every pixel faded together).")


class FaithfulnessHeadline(BaseModel):
    images: int = Field(description="Test images assessed.")
    deletion_auc: MapAndReferences = Field(description="Lower is better.")
    insertion_auc: MapAndReferences = Field(description="Higher is better.")
    road_combined: MapAndReferences = Field(description="ROAD (LeRF − MoRF) / 2; higher is better.")
    fully_randomised_spearman: float | None = Field(
        None,
        description="Rank correlation of the CAMs with those of the fully randomised model; lower is better.",
    )


class ModelSummary(BaseModel):
    """The test-set evaluation, as recorded when the model was trained."""

    model_config = ConfigDict(extra="allow")

    accuracy: float | None = None
    per_class_accuracy: list[float | None] | None = Field(
        None, description="null for a class without test images."
    )
    cam_prototype_distance: dict[str, float] | None = Field(
        None, description="Mean distance between CAM prototypes and class prototypes, per metric."
    )
    misclassified_count: int | None = None
    object_energy: float | None = Field(None, description="Share of CAM mass on the object (shapes).")
    decoy_energy: float | None = Field(None, description="Share of CAM mass on the decoy patch (decoys).")
    faithfulness: FaithfulnessHeadline | None = Field(
        None,
        description="How faithful the CAMs are, on a fixed subset of the test split (the report's "
        "`faithfulness` section has every measure, the subset and the curves).",
    )


class ModelLinks(BaseModel):
    model: str
    job: str
    report: str
    weights: str
    misclassified: str
    explanations: str = Field(description="POST here to explain images with this model.")
    figures: dict[str, str] = Field(description="Overview pictures made at training time (PNG).")


class ModelResource(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    ready: bool = Field(description="True once the training job succeeded: it can explain images.")
    architecture: str
    target_layer: str = Field(description="The layer whose activations the CAMs are computed from.")
    adaptation: str = Field(description="How the architecture was adapted to small inputs, if at all.")
    input: ModelInput
    classes: list[ModelClass]
    summary: ModelSummary
    created_at: datetime
    links: ModelLinks


class ClassRef(BaseModel):
    index: int
    name: str


class MisclassifiedLinks(BaseModel):
    image: str | None = Field(description="The test image with its CAM overlaid (PNG).")


class MisclassifiedItem(BaseModel):
    index: int = Field(description="Position in the test split.")
    true_label: ClassRef
    predicted_label: ClassRef
    confidence: float = Field(description="The model's probability for the predicted class.")
    distance_to_true: dict[str, float] = Field(
        description="Per metric: the CAM against the true class's prototype."
    )
    distance_to_predicted: dict[str, float] = Field(
        description="Per metric: the CAM against the predicted class's prototype."
    )
    links: MisclassifiedLinks


class MisclassifiedPage(BaseModel):
    """The misclassified test images, in the order the evaluation recorded them."""

    model_id: uuid.UUID
    total: int
    items: list[MisclassifiedItem]
    next_cursor: str | None
    links: PageLinks


ReportDocument = dict[str, Any]


class ModelPage(BaseModel):
    """Newest first."""

    items: list[ModelResource]
    next_cursor: str | None
    links: PageLinks
