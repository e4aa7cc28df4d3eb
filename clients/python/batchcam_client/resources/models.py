"""Trained models: what a succeeded job produced."""

from __future__ import annotations

import uuid
from datetime import datetime

from batchcam_client.resources.base import Resource


class ModelInput(Resource):
    channels: int
    height: int
    width: int


class ClassLinks(Resource):
    prototype: str
    cam_prototype: str


class ModelClass(Resource):
    index: int
    name: str
    links: ClassLinks


class MapAndReferences(Resource):
    map: float
    random: float
    uniform: float | None = None


class FaithfulnessHeadline(Resource):
    images: int
    deletion_auc: MapAndReferences
    insertion_auc: MapAndReferences
    road_combined: MapAndReferences
    fully_randomised_spearman: float | None = None


class ModelSummary(Resource):
    accuracy: float | None = None
    per_class_accuracy: list[float | None] | None = None
    cam_prototype_distance: dict[str, float] | None = None
    misclassified_count: int | None = None
    object_energy: float | None = None
    decoy_energy: float | None = None
    faithfulness: FaithfulnessHeadline | None = None


class ModelLinks(Resource):
    model: str
    job: str
    report: str
    weights: str
    misclassified: str
    explanations: str
    figures: dict[str, str]


class Model(Resource):
    id: uuid.UUID
    job_id: uuid.UUID
    ready: bool
    architecture: str
    target_layer: str
    adaptation: str
    input: ModelInput
    classes: list[ModelClass]
    summary: ModelSummary
    created_at: datetime
    links: ModelLinks
