"""Datasets: built-ins and the tenant's uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from batchcam_client.resources.base import Resource


class DatasetSummary(Resource):
    class_names: list[str]
    num_classes: int
    image_size: list[int]
    channels: int
    train_images: int
    test_images: int


class DatasetLinks(Resource):
    dataset: str


class Dataset(Resource):
    id: str  # a built-in's name or an upload's UUID: both are accepted wherever a dataset is named
    name: str
    builtin: bool
    description: str | None = None
    format: Literal["npz", "zip"] | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    summary: DatasetSummary | None = None
    created_at: datetime | None = None
    links: DatasetLinks
