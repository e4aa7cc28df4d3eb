"""Tenant-scoped lookups: another tenant's resource is indistinguishable from a missing one (404)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ProblemError
from persistence.models import Dataset, Job


def owned_job(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID, *, for_update: bool = False) -> Job:
    query = select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
    job = session.scalar(query.with_for_update() if for_update else query)
    if job is None:
        raise ProblemError(404, "job_not_found", f"there is no job {job_id}")
    return job


def find_owned_dataset(session: Session, tenant_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == tenant_id))


def owned_dataset(session: Session, tenant_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    dataset = find_owned_dataset(session, tenant_id, dataset_id)
    if dataset is None:
        raise ProblemError(404, "dataset_not_found", f"there is no dataset {dataset_id}")
    return dataset
