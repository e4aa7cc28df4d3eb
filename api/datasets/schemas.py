"""Datasets at the HTTP boundary: built-ins and validated uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.http.pages import PageLinks


class DatasetSummary(BaseModel):
    class_names: list[str]
    num_classes: int
    image_size: list[int] = Field(description="[height, width] in pixels.")
    channels: int
    train_images: int
    test_images: int


class DatasetLinks(BaseModel):
    dataset: str


class DatasetResource(BaseModel):
    id: str = Field(description="A built-in dataset's name, or an uploaded dataset's UUID.")
    name: str
    builtin: bool
    description: str | None = Field(None, description="What a built-in dataset holds.")
    format: Literal["npz", "zip"] | None = Field(None, description="An upload's format.")
    sha256: str | None = Field(None, description="SHA-256 of the uploaded file.")
    size_bytes: int | None = None
    summary: DatasetSummary | None = Field(None, description="An upload's classes, image size and splits.")
    created_at: datetime | None = None
    links: DatasetLinks


class DatasetPage(BaseModel):
    """Built-in datasets first (on the first page), then this tenant's uploads, newest first."""

    items: list[DatasetResource]
    next_cursor: str | None
    links: PageLinks
