"""One attempt of one explanation: claim the row, explain its images, store the maps, record the end.

The row is the unit of delivery: a conditional update claims it with a lease (a duplicate message
finds it taken and returns), renewed between batches while the worker lives; the sweep takes back a
lease that ran out. Per-image trouble (an index beyond a split's end) becomes that item's error and
the explanation still succeeds. Only an unreachable object store or database is worth another
attempt; bad input, OOM and bugs fail at once with a reason. An attempt that does not succeed
removes the shards it wrote (no result can name them).
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import torch
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from batchcam.errors import BatchCamError, DatasetUnavailableError
from batchcam.explain import Explainer
from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS, UploadLimits
from batchcam.spec.run_files import MODEL_FILE, PROTOTYPES_FILE
from persistence.db import transaction
from persistence.explanations.leases import (
    ExplanationClaim,
    cancel_explanation,
    claim_explanation,
    fail_explanation,
    finish_explanation,
    release_explanation,
)
from persistence.models import Explanation, Model, utcnow
from persistence.objects import ObjectStore, ObjectStoreError, ObjectStoreUnavailableError
from persistence.settings import DEFAULT_EXPLAIN_LEASE_SECONDS
from persistence.states import FailureReason, JobState
from worker.explain.batches import DEFAULT_BATCH_SIZE, ReadyItem, ShardWriter, explain_in_batches
from worker.explain.cache import ExplainerCache, StoredModel
from worker.explain.cleanup import discard_attempt_maps
from worker.explain.inputs import InputItem, ItemError, SplitCache, load_inputs, new_split_cache
from worker.explain.lease import ExplanationCancelledError, ExplanationLeaseLostError, LeaseKeeper
from worker.metrics import observe_explain_latency

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (ObjectStoreUnavailableError, OperationalError)


def worker_identity() -> str:
    """This process as a lease owner, e.g. ``host:pid`` (shown to operators, unique per process)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ExplainOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"  # given back to the queue after transient trouble: send it again later
    CANCELLED = "cancelled"  # stopped as the user asked
    NOT_CLAIMED = "not_claimed"  # running elsewhere or already ended (a duplicate delivery)


# What a row written by ``fail_explanation`` / ``release_explanation`` means for the task.
ENDINGS: dict[JobState | None, ExplainOutcome] = {
    JobState.FAILED: ExplainOutcome.FAILED,
    JobState.QUEUED: ExplainOutcome.RETRY,
    JobState.CANCELLED: ExplainOutcome.CANCELLED,
}


@dataclass(frozen=True)
class ExplainContext:
    sessions: sessionmaker[Session]
    store: ObjectStore
    explainers: ExplainerCache
    max_attempts: int = 3
    batch_size: int = DEFAULT_BATCH_SIZE
    clock: Callable[[], datetime] = field(default=utcnow)
    owner: str = field(default_factory=worker_identity)
    splits: SplitCache = field(default_factory=new_split_cache)  # pass one per process to keep it warm
    upload_limits: UploadLimits = DEFAULT_UPLOAD_LIMITS  # the deployment's (settings.upload_limits())
    lease_for: timedelta = timedelta(seconds=DEFAULT_EXPLAIN_LEASE_SECONDS)


@dataclass(frozen=True)
class ExplanationWork:
    """What the claimed row asks for, read once."""

    tenant_id: uuid.UUID
    request: dict[str, Any]
    model: StoredModel


class ModelArtifactsMissingError(Exception):
    """The model row lacks its weights or prototypes: nothing to explain with."""


@observe_explain_latency(ending={ExplainOutcome.SUCCEEDED, ExplainOutcome.FAILED})
def run_explanation(explanation_id: uuid.UUID, context: ExplainContext) -> ExplainOutcome:
    with transaction(context.sessions) as session:
        claim = claim_explanation(session, explanation_id, context.owner, context.lease_for, context.clock())
    if claim is None:
        log.info("explanation %s is not claimable (running elsewhere, or ended)", explanation_id)
        return ExplainOutcome.NOT_CLAIMED
    outcome = run_claimed(claim, context)
    if outcome is not ExplainOutcome.SUCCEEDED:  # failed, released or taken back: its shards are garbage
        discard_attempt_maps(context.store, claim.tenant_id, claim.explanation_id, claim.attempt)
    return outcome


def run_claimed(claim: ExplanationClaim, context: ExplainContext) -> ExplainOutcome:
    try:
        results = explain_claimed(claim, context)
    except ExplanationLeaseLostError:
        log.warning("explanation %s attempt %d: lease lost; stopped", claim.explanation_id, claim.attempt)
        return ExplainOutcome.NOT_CLAIMED
    except ExplanationCancelledError:
        with transaction(context.sessions) as session:
            cancelled = cancel_explanation(session, claim, context.clock())
        return ExplainOutcome.CANCELLED if cancelled else ExplainOutcome.NOT_CLAIMED
    except TRANSIENT_ERRORS as error:
        return retry_or_fail(claim, context, error)
    except Exception as error:
        reason, message = classify(error)
        return fail(claim, context, reason, message)
    with transaction(context.sessions) as session:
        finished = finish_explanation(session, claim, results, context.clock())
    return ExplainOutcome.SUCCEEDED if finished else ExplainOutcome.NOT_CLAIMED


def explain_claimed(claim: ExplanationClaim, context: ExplainContext) -> list[dict[str, Any]]:
    lease = LeaseKeeper(context.sessions, claim, context.lease_for, context.clock)
    work = read_work(context.sessions, claim.explanation_id)
    explainer = context.explainers.get(work.model)  # loading a model can take a while: renew after
    lease.renew()
    inputs = load_inputs(context.store, work.request["inputs"], context.splits, context.upload_limits)
    targets: list[int | None] = work.request.get("targets") or [None] * len(inputs)
    ready, errors = conform_all(explainer, inputs, targets)
    lease.renew()
    write_shard = ShardWriter(context.store, work.tenant_id, claim.explanation_id, claim.attempt)
    explained = explain_in_batches(
        explainer,
        ready,
        work.request["method"],
        write_shard,
        context.batch_size,
        after_batch=lease.renew,
        metrics=work.request.get("metrics") or (),  # rows queued before metrics existed have none
    )
    return [
        {"index": position, "source": item.source, "true_label": item.true_label}
        | (explained[position] if position in explained else {"error": errors[position].to_dict()})
        for position, item in enumerate(inputs)
    ]


def read_work(sessions: sessionmaker[Session], explanation_id: uuid.UUID) -> ExplanationWork:
    with sessions() as session:
        explanation = session.get_one(Explanation, explanation_id)
        model = session.get_one(Model, explanation.model_id)
        weights, prototypes = model.artifacts.get(MODEL_FILE), model.artifacts.get(PROTOTYPES_FILE)
        if not isinstance(weights, str) or not isinstance(prototypes, str):
            raise ModelArtifactsMissingError(f"model {model.id} has no stored weights or prototypes")
        return ExplanationWork(
            tenant_id=explanation.tenant_id,
            request=dict(explanation.request),
            model=StoredModel(model.id, weights, prototypes),
        )


def conform_all(
    explainer: Explainer, inputs: list[InputItem], targets: list[int | None]
) -> tuple[list[ReadyItem], dict[int, ItemError]]:
    """Every usable image at the model's input spec; the others with the reason they are not."""
    ready: list[ReadyItem] = []
    errors: dict[int, ItemError] = {}
    for position, (item, target) in enumerate(zip(inputs, targets, strict=True)):
        if item.image is None:
            errors[position] = item.error or ItemError("input_missing", "the image could not be read")
            continue
        try:
            image = explainer.conform(item.image)
        except BatchCamError as error:
            errors[position] = ItemError(error.code, error.message)
            continue
        ready.append(ReadyItem(position, image, target, item.true_label))
    return ready, errors


def classify(error: Exception) -> tuple[FailureReason, str]:
    """Why a non-transient failure happened, in the jobs' vocabulary."""
    if isinstance(error, DatasetUnavailableError):
        return FailureReason.INFRASTRUCTURE, error.message
    if isinstance(error, BatchCamError):
        return FailureReason.INVALID_INPUT, error.message
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return FailureReason.OUT_OF_MEMORY, "the GPU ran out of memory; send fewer or smaller images"
    if isinstance(error, ObjectStoreError | ModelArtifactsMissingError):
        return FailureReason.INFRASTRUCTURE, str(error)
    log.error("explanation failed with an internal error:\n%s", "".join(traceback.format_exception(error)))
    return FailureReason.INTERNAL_ERROR, f"internal error ({type(error).__name__})"


def fail(
    claim: ExplanationClaim, context: ExplainContext, reason: FailureReason, message: str
) -> ExplainOutcome:
    with transaction(context.sessions) as session:
        ended = fail_explanation(session, claim, reason, message, context.clock())
    return ENDINGS.get(ended, ExplainOutcome.NOT_CLAIMED)


def transient_message(error: Exception) -> str:
    if isinstance(error, ObjectStoreUnavailableError):
        return str(error)  # written to name the operation and location only, never credentials
    return "the database could not be reached"  # a driver's message may quote statements and hosts


def retry_or_fail(claim: ExplanationClaim, context: ExplainContext, error: Exception) -> ExplainOutcome:
    """Give the row back for another attempt while attempts remain; then fail as infrastructure.

    If the database itself is down this raises too, and the row stays ``running`` until its lease
    expires and the sweep takes it back; nothing was recorded as done.
    """
    message = transient_message(error)
    if claim.attempt >= context.max_attempts:
        return fail(claim, context, FailureReason.INFRASTRUCTURE, message)
    log.warning("explanation %s attempt %d: %s; retrying", claim.explanation_id, claim.attempt, message)
    with transaction(context.sessions) as session:
        released = release_explanation(session, claim, context.clock())
    return ENDINGS.get(released, ExplainOutcome.NOT_CLAIMED)
