"""Removing what a training attempt leaves behind once nothing can use it (best effort).

- An attempt that did not produce the job's model: its uploads under ``models/<its model id>/``
  (each attempt uploads under a fresh id, so no other attempt's or job's objects are touched).
- A job that ended (succeeded, failed, cancelled): its checkpoints, which only a later attempt of the
  same job could resume from. They hold the optimiser state too: for ConvNeXt-V2-Tiny about 340 MB
  per checkpoint, one per epoch. The supervisor removes them when it writes the end; the sweep
  removes those of jobs that ended otherwise (``persistence.jobs.checkpoints``).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.jobs.checkpoints import ended_jobs_with_checkpoints, forget_checkpoints
from persistence.objects import ObjectStore, ObjectStoreError, ObjectStoreUnavailableError, resource_prefix
from persistence.states import JobState
from worker.garbage import delete_prefix_quietly
from worker.training.messages import TrainingRequest

log = logging.getLogger(__name__)
CHECKPOINT_SWEEP_BATCH = 100  # jobs per sweep: a backlog is worked off over a few sweeps


def clean_up_attempt(
    store: ObjectStore, request: TrainingRequest, ended_in: JobState | None, job_ended: bool
) -> None:
    """``ended_in``: what the supervisor wrote (None: nothing, the lease was no longer ours).
    ``job_ended``: the job is in a terminal state, whoever wrote it (this attempt, or the sweep
    that took a lost lease back while this attempt kept uploading)."""
    tenant = str(request.tenant_id)
    if ended_in != JobState.SUCCEEDED:
        prefix = resource_prefix(tenant, "models", str(request.model_id))
        delete_prefix_quietly(store, prefix, f"job {request.job_id}: an unsuccessful attempt's model uploads")
    if job_ended:
        prefix = resource_prefix(tenant, "checkpoints", str(request.job_id))
        delete_prefix_quietly(store, prefix, f"job {request.job_id}: checkpoints")


def remove_ended_jobs_checkpoints(
    sessions: sessionmaker[Session], store: ObjectStore, limit: int = CHECKPOINT_SWEEP_BATCH
) -> int:
    """The sweep's share: the checkpoints of ended jobs that still name one.

    Files first, the row second: a job is forgotten only once its files are gone, so a store that
    fails leaves it for the next sweep (an unavailable one stops this sweep's removals, so that the
    sweep is not held up by a timeout per job). Returns how many jobs were cleared.
    """
    with transaction(sessions) as session:
        left = ended_jobs_with_checkpoints(session, limit)
    removed = []
    for checkpoint in left:
        prefix = resource_prefix(str(checkpoint.tenant_id), "checkpoints", str(checkpoint.job_id))
        try:
            count = store.delete_prefix(prefix)
        except ObjectStoreUnavailableError as error:  # the rest would wait on the same timeouts
            log.warning("checkpoints of ended jobs not removed yet, the store is unavailable (%s)", error)
            break
        except (ObjectStoreError, OSError) as error:  # OSError: the local store's folder operations
            log.warning("job %s: checkpoints not removed yet (%s)", checkpoint.job_id, error)
            continue
        if count:
            log.info("job %s ended: removed its %d checkpoint object(s)", checkpoint.job_id, count)
        removed.append(checkpoint)
    if removed:
        with transaction(sessions) as session:
            forget_checkpoints(session, removed)
    return len(removed)
