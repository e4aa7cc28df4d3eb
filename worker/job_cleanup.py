"""Removing what a training attempt leaves behind once nothing can use it (best effort).

- An attempt that did not produce the job's model: its uploads under ``models/<its model id>/``
  (each attempt uploads under a fresh id, so no other attempt's or job's objects are touched).
- A job that ended (succeeded, failed, cancelled): its checkpoints, which only a later attempt of the
  same job could resume from. They hold the optimiser state too: for ConvNeXt-V2-Tiny about 340 MB
  per checkpoint, one per epoch.

A failure here leaves garbage behind, never a wrong answer, so it is logged and not raised.
"""

from __future__ import annotations

import logging
import uuid

from persistence.job_states import TERMINAL_STATES, JobState
from persistence.object_errors import ObjectStoreError
from persistence.objects import ObjectStore, resource_prefix
from worker.messages import TrainingRequest

log = logging.getLogger(__name__)


def clean_up_attempt(store: ObjectStore, request: TrainingRequest, ended_in: JobState | None) -> None:
    """``ended_in``: what the supervisor wrote (None: nothing, the lease was no longer ours)."""
    tenant = str(request.tenant_id)
    if ended_in != JobState.SUCCEEDED:
        _delete(
            store, resource_prefix(tenant, "models", str(request.model_id)), request.job_id, "model uploads"
        )
    if ended_in in TERMINAL_STATES:
        _delete(
            store, resource_prefix(tenant, "checkpoints", str(request.job_id)), request.job_id, "checkpoints"
        )


def _delete(store: ObjectStore, prefix: str, job_id: uuid.UUID, what: str) -> None:
    try:
        removed = store.delete_prefix(prefix)
    except (ObjectStoreError, OSError) as error:  # OSError: the local store's folder operations
        log.warning("job %s: its %s could not be removed (%s); they stay as garbage", job_id, what, error)
        return
    if removed:
        log.info("job %s: removed %d object(s) of its %s", job_id, removed, what)
