"""What an explanation request asks for, checked against the model before anything is stored.

Uploaded images arrive decoded (``api.explanations.intake``); dataset images are named by position
and fetched by the worker. Either way the stored ``request`` records the CAM method, the targets and
where the inputs are, so that the worker needs nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from api.explanations.limits import ExplanationLimits
from api.http.errors import ProblemError
from api.jobs.specs import parse_uuid, resolve_dataset
from api.ownership import find_owned_dataset
from batchcam.spec.image_metrics import check_image_metrics
from batchcam.spec.names import check_cam_method
from persistence.models import Job, Model

SPLITS = ("train", "test")


@dataclass(frozen=True)
class UploadedImages:
    names: list[str]  # per image, its file's name (FILE[i] in an .npz), for the client's orientation only
    images: list[np.ndarray]  # uint8 C×H×W, as decoded (the worker conforms them to the model)


@dataclass(frozen=True)
class DatasetSelection:
    dataset: str
    split: str
    indices: list[int]


@dataclass(frozen=True)
class ExplanationSubmission:
    inputs: UploadedImages | DatasetSelection
    targets: list[int | None] | None
    method: str
    metrics: list[str]
    fingerprint: dict[str, Any]  # what makes two requests "the same" for Idempotency-Key

    @property
    def count(self) -> int:
        if isinstance(self.inputs, UploadedImages):
            return len(self.inputs.images)
        return len(self.inputs.indices)


def check_count(count: int, limits: ExplanationLimits) -> None:
    if count > limits.max_images:
        raise ProblemError(
            422,
            "too_many_images",
            f"{count} images in one request; at most {limits.max_images} are accepted, split the rest",
        )


def check_method(method: str) -> None:
    check_cam_method(method)  # the library's ConfigError (unknown_cam_method) lists the accepted ones


def check_metrics(metrics: list[str]) -> list[str]:
    """The names, each once; unknown ones are the library's ConfigError (unknown_faithfulness_metric)."""
    return list(check_image_metrics(metrics))


def check_targets(targets: list[int | None] | None, count: int, num_classes: int) -> None:
    if targets is None:
        return
    if len(targets) != count:
        raise ProblemError(
            422, "invalid_targets", f"give one target per image ({count}) or none, got {len(targets)}"
        )
    for position, target in enumerate(targets):
        if target is not None and not 0 <= target < num_classes:
            raise ProblemError(
                422,
                "invalid_target",
                f"targets[{position}] = {target} is not a class of this model (0 to {num_classes - 1})",
            )


def stored_dataset_inputs(
    session: Session, tenant_id: uuid.UUID, model: Model, selection: DatasetSelection
) -> dict[str, Any]:
    """The dataset as the model's training job loaded it (same seed and image size)."""
    reference = resolve_dataset(session, tenant_id, selection.dataset)  # ConfigError: unknown_dataset
    dataset_key = None
    upload_id = parse_uuid(reference)
    if upload_id is not None:
        upload = find_owned_dataset(session, tenant_id, upload_id)
        assert upload is not None  # resolve_dataset found it
        check_indices(selection, int(upload.summary[f"{selection.split}_images"]))
        dataset_key = upload.object_key
    job_spec = session.get_one(Job, model.job_id).spec
    return {
        "kind": "dataset",
        "dataset": reference,
        "dataset_key": dataset_key,
        "split": selection.split,
        "indices": selection.indices,
        "seed": int(job_spec.get("seed", 0)),
        "image_size": job_spec.get("image_size"),
    }


def check_indices(selection: DatasetSelection, size: int) -> None:
    outside = [index for index in selection.indices if index >= size]
    if outside:
        raise ProblemError(
            422,
            "index_out_of_range",
            f"indices {outside[:10]} lie outside the {selection.split} split of "
            f"{selection.dataset} (0 to {size - 1})",
        )
