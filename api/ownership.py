"""Tenant-scoped lookups of every resource: another tenant's id answers 404, like a missing one."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.http.errors import ProblemError
from persistence.models import Dataset, Explanation, Job, Model, WebhookDelivery, WebhookEndpoint
from persistence.states import JobState


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


def owned_model(session: Session, tenant_id: uuid.UUID, model_id: uuid.UUID) -> Model:
    model = session.scalar(select(Model).where(Model.id == model_id, Model.tenant_id == tenant_id))
    if model is None:
        raise ProblemError(404, "model_not_found", f"there is no model {model_id}")
    return model


def model_is_ready(session: Session, model: Model) -> bool:
    """A model can be used once the job that produced it has succeeded."""
    return session.scalar(select(Job.state).where(Job.id == model.job_id)) == JobState.SUCCEEDED


def owned_explanation(
    session: Session, tenant_id: uuid.UUID, explanation_id: uuid.UUID, *, for_update: bool = False
) -> Explanation:
    query = select(Explanation).where(Explanation.id == explanation_id, Explanation.tenant_id == tenant_id)
    explanation = session.scalar(query.with_for_update() if for_update else query)
    if explanation is None:
        raise ProblemError(404, "explanation_not_found", f"there is no explanation {explanation_id}")
    return explanation


def owned_webhook(
    session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == webhook_id, WebhookEndpoint.tenant_id == tenant_id
    )
    endpoint = session.scalar(query.with_for_update() if for_update else query)
    if endpoint is None:
        raise ProblemError(404, "webhook_not_found", f"there is no webhook {webhook_id}")
    return endpoint


def owned_delivery(
    session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """A delivery of one of the tenant's endpoints (the endpoint's id must match too)."""
    delivery = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == webhook_id,
            WebhookDelivery.tenant_id == tenant_id,
        )
    )
    if delivery is None:
        raise ProblemError(404, "webhook_delivery_not_found", f"there is no delivery {delivery_id}")
    return delivery
