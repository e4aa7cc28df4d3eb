"""Explanations: CAMs of images by a model, with per-image predictions and scores."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from batchcam_client.resources.base import Failure, Resource, RunState

ExplanationState = RunState


class ClassRef(Resource):
    index: int
    name: str


class ItemSource(Resource):
    kind: Literal["upload", "dataset"]
    filename: str | None = None
    dataset: str | None = None
    split: str | None = None
    index: int | None = None


class FaithfulnessCurve(Resource):
    fractions: list[float]
    values: list[float]


class FaithfulnessScore(Resource):
    score: float
    random: float
    better: Literal["lower", "higher"]
    curve: FaithfulnessCurve


class ItemError(Resource):
    code: str
    message: str


class ItemLinks(Resource):
    overlay: str
    raw: str
    array: str


class ExplanationItem(Resource):
    index: int
    source: ItemSource
    predicted: ClassRef | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    target: ClassRef | None = None
    true_label: ClassRef | None = None
    distance_to_predicted: dict[str, float] | None = None
    distance_to_target: dict[str, float] | None = None
    distance_to_true: dict[str, float] | None = None
    faithfulness: dict[str, FaithfulnessScore] | None = None
    error: ItemError | None = None
    links: ItemLinks | None = None


class ExplanationLinks(Resource):
    explanation: str
    model: str


class ExplanationSummary(Resource):
    """As lists show it: without the per-image results."""

    id: uuid.UUID
    model_id: uuid.UUID
    state: ExplanationState
    terminal: bool
    method: str
    count: int
    metrics: list[str]
    failure: Failure | None
    attempt: int
    created_at: datetime
    finished_at: datetime | None
    links: ExplanationLinks


class Explanation(ExplanationSummary):
    failed_items: int
    items: list[ExplanationItem]
