"""Removing what a training attempt leaves behind once nothing can use it (best effort).

- An attempt that did not produce the job's model: its uploads under ``models/<its model id>/``
  (each attempt uploads under a fresh id, so no other attempt's or job's objects are touched).
- A job that ended (succeeded, failed, cancelled): its checkpoints, which only a later attempt of the
  same job could resume from. They hold the optimiser state too: for ConvNeXt-V2-Tiny about 340 MB
  per checkpoint, one per epoch.
"""

from __future__ import annotations

from persistence.job_states import TERMINAL_STATES, JobState
from persistence.objects import ObjectStore, resource_prefix
from worker.garbage import delete_prefix_quietly
from worker.messages import TrainingRequest


def clean_up_attempt(store: ObjectStore, request: TrainingRequest, ended_in: JobState | None) -> None:
    """``ended_in``: what the supervisor wrote (None: nothing, the lease was no longer ours)."""
    tenant = str(request.tenant_id)
    if ended_in != JobState.SUCCEEDED:
        prefix = resource_prefix(tenant, "models", str(request.model_id))
        delete_prefix_quietly(store, prefix, f"job {request.job_id}: an unsuccessful attempt's model uploads")
    if ended_in in TERMINAL_STATES:
        prefix = resource_prefix(tenant, "checkpoints", str(request.job_id))
        delete_prefix_quietly(store, prefix, f"job {request.job_id}: checkpoints")
