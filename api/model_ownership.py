"""Tenant-scoped lookups of models and explanations: another tenant's id answers 404, like a missing one."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ProblemError
from persistence.models import Explanation, Job, Model
from persistence.states import JobState


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
