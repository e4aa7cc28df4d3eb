"""Model and explanation rows written directly (as a worker would leave them), for read-side tests
that need many rows in chosen states and at chosen times, not real heatmaps."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.models import Explanation, Job, Model, Tenant
from persistence.states import JobState


def insert_tenant(sessions: sessionmaker[Session]) -> uuid.UUID:
    with transaction(sessions) as session:
        tenant = Tenant(name=f"t-{uuid.uuid4().hex[:8]}")
        session.add(tenant)
        session.flush()
        return tenant.id


def insert_model(sessions: sessionmaker[Session], tenant_id: uuid.UUID) -> uuid.UUID:
    """A model row (and the succeeded job it came from) with no artifacts: enough to explain against
    as far as the database is concerned."""
    model_id = uuid.uuid4()
    with transaction(sessions) as session:
        job = Job(
            tenant_id=tenant_id,
            spec={"dataset": "shapes"},
            state=JobState.SUCCEEDED,
            progress={},
            model_id=model_id,
        )
        session.add(job)
        session.flush()
        session.add(Model(id=model_id, tenant_id=tenant_id, job_id=job.id, spec={}, summary={}, artifacts={}))
    return model_id


def insert_explanation(
    sessions: sessionmaker[Session],
    tenant_id: uuid.UUID,
    model_id: uuid.UUID,
    *,
    count: int = 2,
    method: str = "gradcam",
    **values: Any,
) -> uuid.UUID:
    """An explanation of ``count`` dataset images; ``values`` set any other column (state, times...)."""
    inputs = [{"kind": "dataset", "dataset": "shapes", "split": "test", "index": i} for i in range(count)]
    with transaction(sessions) as session:
        explanation = Explanation(
            tenant_id=tenant_id,
            model_id=model_id,
            request={"method": method, "count": count, "targets": None, "inputs": inputs},
            **values,
        )
        session.add(explanation)
        session.flush()
        return explanation.id
