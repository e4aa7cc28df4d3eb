"""A submission becomes a job spec: exactly ``TrainConfig.to_dict()``, validated by TrainConfig itself.

``spec["dataset"]`` is a built-in dataset's name or an uploaded dataset's id (the worker resolves
the id to the upload's object key). Execution-only options keep TrainConfig's defaults; the worker
decides them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.jobs.schemas import JobSubmission
from api.ownership import find_owned_dataset
from batchcam.errors import ConfigError
from batchcam.spec.datasets import BUILTIN_DATASETS, DECOY_PREFIX
from batchcam.spec.layers import check_target_layer, mixing_warning
from batchcam.spec.names import uses_cams
from batchcam.spec.training import TrainConfig


@dataclass(frozen=True)
class ValidatedSubmission:
    spec: dict[str, Any]
    warnings: tuple[str, ...]  # valid, but worth knowing: recorded as the job's "warning" events


def validated_submission(
    session: Session, tenant_id: uuid.UUID, submission: JobSubmission
) -> ValidatedSubmission:
    """The spec to store and its warnings; ``ConfigError`` (a 422 problem, the CLI's wording) if invalid."""
    options = submission.model_dump()
    config = TrainConfig(**options)  # raises before any lookup, so errors read as on the command line
    warnings: tuple[str, ...] = ()
    if config.target_layer is not None:  # a typo should be a 422 now, not a failed job after queueing
        mixing = check_target_layer(config.model, config.target_layer)
        if mixing and uses_cams(config.mode) and config.cam_batch_statistics == "differentiable":
            warnings = (mixing_warning(config.target_layer, mixing),)
    if config.prototype_mask == "decoy" and not config.dataset.startswith(DECOY_PREFIX):
        raise ConfigError(  # uploads have no decoy masks either: only the built-in decoy sets do
            f"prototype_mask 'decoy' needs a built-in decoy dataset "
            f"({', '.join(name for name in BUILTIN_DATASETS if name.startswith(DECOY_PREFIX))}); "
            f"dataset {config.dataset!r} has no decoy patch. Use prototype_mask 'none'"
        )
    dataset = resolve_dataset(session, tenant_id, config.dataset)
    return ValidatedSubmission({**config.to_dict(), "dataset": dataset}, warnings)


def resolve_dataset(session: Session, tenant_id: uuid.UUID, reference: str) -> str:
    """A built-in name as given, or the canonical id of one of this tenant's uploads."""
    if reference in BUILTIN_DATASETS:
        return reference
    dataset_id = parse_uuid(reference)
    if dataset_id is not None and find_owned_dataset(session, tenant_id, dataset_id) is not None:
        return str(dataset_id)
    raise ConfigError(
        f"unknown dataset {reference!r}; use a built-in dataset ({', '.join(BUILTIN_DATASETS)}) "
        "or the id of a dataset you uploaded",
        code="unknown_dataset",
    )


def parse_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def submission_of(spec: dict[str, Any]) -> JobSubmission:
    """The client-facing part of a stored spec (execution-only options left out)."""
    return JobSubmission.model_validate(
        {name: spec[name] for name in JobSubmission.model_fields if name in spec}
    )
