"""An accepted explanation request becomes inputs in the object store plus a queued row.

Order matters for "no orphans": everything is validated first (nothing stored yet); the uploaded
images are stored as one ``.npz`` (in the row itself when it is small: one round trip less here and
in the worker); then the row (and the idempotent response) commit together. If the commit fails the
object is deleted again. The caller enqueues only after this returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from api.context import ApiContext
from api.datasets.registration import delete_orphan
from api.explanations.validation import (
    DatasetSelection,
    ExplanationSubmission,
    UploadedImages,
    check_targets,
    stored_dataset_inputs,
)
from api.explanations.views import explanation_path, explanation_resource
from api.http.errors import ProblemError
from api.http.idempotency import IdempotencyClaim, StoredResponse, record_response
from api.models.views import model_spec
from api.ownership import model_is_ready, owned_model
from persistence.db import transaction
from persistence.explanations.objects import INLINE, NPZ_CONTENT_TYPE, fits_inline, images_npz, inputs_key
from persistence.models import Explanation, table_of, utcnow
from persistence.states import JobState

POLL_AFTER_SECONDS = "1"
INSERT_EXPLANATION = insert(table_of(Explanation))


@dataclass(frozen=True)
class PreparedExplanation:
    model_id: uuid.UUID
    class_names: tuple[str, ...]
    dataset_inputs: dict[str, Any] | None  # resolved dataset reference; None for uploaded images


def prepare_explanation(
    context: ApiContext, tenant_id: uuid.UUID, model_id: uuid.UUID, submission: ExplanationSubmission
) -> PreparedExplanation:
    """Every check that needs the database: the model is ours and ready, targets and data fit it.
    ``remembered_preparation`` answers the common case without it; call this when that gives None."""
    with context.sessions() as session:
        model = owned_model(session, tenant_id, model_id)
        if not model_is_ready(session, model):
            raise ProblemError(
                409,
                "model_not_ready",
                f"model {model_id} cannot explain yet: the job that trains it has not succeeded",
            )
        spec = model_spec(model)
        context.ready_models.remember(tenant_id, model_id, spec)
        check_targets(submission.targets, submission.count, spec.num_classes)
        dataset_inputs = (
            stored_dataset_inputs(session, tenant_id, model, submission.inputs)
            if isinstance(submission.inputs, DatasetSelection)
            else None
        )
    return PreparedExplanation(model_id, spec.class_names, dataset_inputs)


def remembered_preparation(
    context: ApiContext, tenant_id: uuid.UUID, model_id: uuid.UUID, submission: ExplanationSubmission
) -> PreparedExplanation | None:
    """``prepare_explanation`` of uploaded images for a model this process knows is ready (nothing
    to read); None when the database must be asked."""
    known = context.ready_models.get(tenant_id, model_id)
    if known is None or not isinstance(submission.inputs, UploadedImages):
        return None
    check_targets(submission.targets, submission.count, known.num_classes)
    return PreparedExplanation(model_id, known.class_names, None)


def create_explanation(
    context: ApiContext,
    tenant_id: uuid.UUID,
    prepared: PreparedExplanation,
    submission: ExplanationSubmission,
    claim: IdempotencyClaim | None,
    explanation_id: uuid.UUID,
) -> StoredResponse:
    """Store the inputs, insert the queued row (and its idempotent response); the 202 to answer.
    ``explanation_id`` is chosen by the caller, so that it can watch the row before it exists."""
    stored_inputs: str | None = None
    inline_inputs: bytes | None = None
    if isinstance(submission.inputs, UploadedImages):
        npz = images_npz(submission.inputs.images)
        if fits_inline(npz):
            inline_inputs = npz
        else:
            stored_inputs = inputs_key(tenant_id, explanation_id)
            context.object_store.put(stored_inputs, npz, content_type=NPZ_CONTENT_TYPE)
    now = utcnow()
    values = {
        "id": explanation_id,
        "tenant_id": tenant_id,
        "model_id": prepared.model_id,
        "state": JobState.QUEUED,
        "request": stored_request(submission, prepared, stored_inputs),
        "attempt": 0,
        "image_count": submission.count,
        "created_at": now,
        "updated_at": now,
    }
    row = Explanation(**values)  # what the 202 shows; never added to a session
    try:
        with transaction(context.sessions) as session:
            # A Core INSERT, not the ORM's unit of work (ARCHITECTURE §7.3: hot path).
            session.execute(INSERT_EXPLANATION, values | {"inline_inputs": inline_inputs})
            response = StoredResponse(
                status=202,
                body=explanation_resource(row, prepared.class_names).model_dump(mode="json"),
                headers={"Location": explanation_path(explanation_id), "Retry-After": POLL_AFTER_SECONDS},
            )
            if claim is not None:
                record_response(session, claim, response)
    except BaseException:
        if stored_inputs is not None:
            delete_orphan(context.object_store, stored_inputs)
        raise
    return response


def stored_request(
    submission: ExplanationSubmission, prepared: PreparedExplanation, stored_inputs: str | None
) -> dict[str, Any]:
    inputs: dict[str, Any]
    if isinstance(submission.inputs, UploadedImages):
        where = {"key": stored_inputs} if stored_inputs is not None else {INLINE: True}
        inputs = {"kind": "upload", **where, "names": submission.inputs.names}
    else:
        assert prepared.dataset_inputs is not None
        inputs = prepared.dataset_inputs
    return {
        "method": submission.method,
        "metrics": submission.metrics,
        "targets": submission.targets,
        "count": submission.count,
        "inputs": inputs,
    }
