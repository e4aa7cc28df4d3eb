"""Datasets as the API shows them."""

from __future__ import annotations

from api.datasets.schemas import DatasetLinks, DatasetResource, DatasetSummary
from batchcam.spec.datasets import BUILTIN_DATASETS
from persistence.models import Dataset

DATASETS_PATH = "/v1/datasets"


def builtin_dataset_resource(name: str) -> DatasetResource:
    return DatasetResource(
        id=name,
        name=name,
        builtin=True,
        description=BUILTIN_DATASETS[name],
        links=DatasetLinks(dataset=f"{DATASETS_PATH}/{name}"),
    )


def builtin_dataset_resources() -> list[DatasetResource]:
    return [builtin_dataset_resource(name) for name in BUILTIN_DATASETS]


def uploaded_dataset_resource(dataset: Dataset) -> DatasetResource:
    return DatasetResource(
        id=str(dataset.id),
        name=dataset.name,
        builtin=False,
        format="npz" if dataset.format == "npz" else "zip",
        sha256=dataset.sha256,
        size_bytes=dataset.size_bytes,
        summary=DatasetSummary.model_validate(dataset.summary),
        created_at=dataset.created_at,
        links=DatasetLinks(dataset=f"{DATASETS_PATH}/{dataset.id}"),
    )
