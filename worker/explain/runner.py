"""One explain message: claim its row (and, for a small request, others of its model: dynamic
batching), explain, store the maps, record the ends.

The row is the unit of delivery: a conditional update claims it with a lease (a duplicate message
finds it taken and returns), renewed between batches while the worker lives; the sweep takes back a
lease that ran out. A small request goes with the other small requests of its model that are queued
(``worker.explain.together``); a large one runs alone, its maps stored in shards as it goes. Per-image
trouble (an index beyond a split's end) becomes that item's error and the explanation still succeeds
(it fails when no image could be explained). Only an unreachable object store or database is worth
another attempt; bad input, OOM and bugs fail at once with a reason. An attempt that does not succeed
removes the shards it wrote (no result can name them).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from functools import partial
from typing import Any

import torch
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from batchcam.errors import BatchCamError, DatasetUnavailableError
from persistence.db import transaction
from persistence.explanations.batching import ClaimedBatch, ClaimedRequest, claim_batch, claim_model_batch
from persistence.explanations.leases import (
    ExplanationClaim,
    cancel_explanation,
    fail_explanation,
    finish_explanation,
    release_explanation,
)
from persistence.objects import ObjectStoreError, ObjectStoreUnavailableError
from persistence.states import FailureReason
from persistence.wakeups import send_after_commit
from worker.explain.batches import ShardWriter, conform_all, explain_in_batches
from worker.explain.cache import ModelArtifactsMissingError
from worker.explain.cleanup import discard_attempt_maps
from worker.explain.context import ENDINGS, FINAL_OUTCOMES, ExplainContext, ExplainOutcome
from worker.explain.inputs import InlineInputsMissingError, load_inputs
from worker.explain.lease import ExplanationCancelledError, ExplanationLeaseLostError, LeaseKeeper
from worker.explain.together import model_of, run_together, works_of
from worker.metrics import observe_explain_end

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (ObjectStoreUnavailableError, OperationalError)


def run_explanation(
    explanation_id: uuid.UUID, context: ExplainContext, woken_model: uuid.UUID | None = None
) -> ExplainOutcome:
    """The named row's outcome (the others of its batch are observed in the metrics).

    ``woken_model``: the message is that model's wake-up (``worker.explain.wake_gate``), so when the
    named row has ended the model's oldest queued row is claimed instead, queued rows the claim left
    behind get a wake-up of their own, and the outcome is ``RETRY`` when any claimed row was given
    back for another attempt (the caller sends the wake-up again later)."""
    started = time.monotonic()
    if woken_model is None and explanation_id in context.ended_here:  # another batch here ended it
        return ExplainOutcome.NOT_CLAIMED
    try:
        with transaction(context.sessions) as session:
            batch = claim_work(session, explanation_id, woken_model, context)
    except OperationalError:  # acknowledged on receipt: sent again later (RETRY), not lost by raising
        log.warning("explanation %s: database unreachable; its message is sent again later", explanation_id)
        return ExplainOutcome.RETRY
    if batch is None:
        log.info("explanation %s is not claimable (running elsewhere, or ended)", explanation_id)
        return ExplainOutcome.NOT_CLAIMED
    if woken_model is not None and batch.leftover and context.wake_model is not None:
        # Sent before explaining: another worker may take the rest meanwhile.
        wake = partial(context.wake_model, explanation_id, woken_model)
        send_after_commit(wake, f"model {woken_model}'s explanations")
    if batch.together:
        outcomes = run_together(
            batch.model_id, works_of(batch), context, lambda c, e: end_after(c, context, e)
        )
    else:
        (claim,) = batch.claims
        asked = batch.requests[claim.explanation_id]
        outcomes = {claim.explanation_id: run_claimed(claim, asked, batch.model_id, context)}
    for claim in batch.claims:
        outcome = outcomes.get(claim.explanation_id, ExplainOutcome.NOT_CLAIMED)  # a row gone meanwhile
        if outcome is not ExplainOutcome.SUCCEEDED:  # failed, released or taken back: shards are garbage
            discard_attempt_maps(context.store, claim.tenant_id, claim.explanation_id, claim.attempt)
        observe_explain_end(outcome, claim.created_at, time.monotonic() - started, context.clock())
    context.ended_here.add(row for row, outcome in outcomes.items() if outcome in FINAL_OUTCOMES)
    if woken_model is not None and ExplainOutcome.RETRY in outcomes.values():
        return ExplainOutcome.RETRY  # rows it claimed were given back: the model's wake-up comes again
    return outcomes.get(explanation_id, ExplainOutcome.NOT_CLAIMED)


def claim_work(
    session: Session, explanation_id: uuid.UUID, woken_model: uuid.UUID | None, context: ExplainContext
) -> ClaimedBatch | None:
    """The named row's batch; for a model's wake-up whose row has ended, the model's oldest queued."""
    now = context.clock()
    batch = None
    if explanation_id not in context.ended_here:
        batch = claim_batch(session, explanation_id, context.owner, context.lease_for, now, context.batching)
    if batch is None and woken_model is not None:
        batch = claim_model_batch(
            session, woken_model, context.owner, context.lease_for, now, context.batching
        )
    return batch


def run_claimed(
    claim: ExplanationClaim, asked: ClaimedRequest, model_id: uuid.UUID, context: ExplainContext
) -> ExplainOutcome:
    try:
        results = explain_claimed(claim, asked, model_id, context)
    except ExplanationLeaseLostError:
        log.warning("explanation %s attempt %d: lease lost; stopped", claim.explanation_id, claim.attempt)
        return ExplainOutcome.NOT_CLAIMED
    except ExplanationCancelledError:
        with transaction(context.sessions) as session:
            cancelled = cancel_explanation(session, claim, context.clock())
        return ExplainOutcome.CANCELLED if cancelled else ExplainOutcome.NOT_CLAIMED
    except Exception as error:
        return end_after(claim, context, error)
    with transaction(context.sessions) as session:
        ended = finish_explanation(session, claim, results, context.clock())
    return ENDINGS.get(ended, ExplainOutcome.NOT_CLAIMED)


def end_after(claim: ExplanationClaim, context: ExplainContext, error: Exception) -> ExplainOutcome:
    """End an attempt that raised: another attempt after transient trouble, else failed with a reason."""
    if isinstance(error, TRANSIENT_ERRORS):
        return retry_or_fail(claim, context, error)
    reason, message = classify(error)
    return fail(claim, context, reason, message)


def explain_claimed(
    claim: ExplanationClaim, asked: ClaimedRequest, model_id: uuid.UUID, context: ExplainContext
) -> list[dict[str, Any]]:
    """A large request alone (``asked``: as its claim returned it), its maps stored in shards."""
    lease = LeaseKeeper(context.sessions, claim, context.lease_for, context.clock)
    # Loading a model can take a while: renew after.
    explainer = context.explainers.for_model(model_id, lambda: model_of(context.sessions, model_id))
    lease.renew()
    request = asked.request
    inputs = load_inputs(
        context.store, request["inputs"], context.splits, context.upload_limits, asked.inline_inputs
    )
    targets: list[int | None] = request.get("targets") or [None] * len(inputs)
    ready, errors = conform_all(explainer, inputs, targets)
    lease.renew()
    write_shard = ShardWriter(context.store, claim.tenant_id, claim.explanation_id, claim.attempt)
    explained = explain_in_batches(
        explainer,
        ready,
        request["method"],
        write_shard,
        context.batch_size,
        after_batch=lease.renew,
        metrics=request.get("metrics") or (),  # rows queued before metrics existed have none
        threads=context.threads,
    )
    return [
        {"index": position, "source": item.source, "true_label": item.true_label}
        | (explained[position] if position in explained else {"error": errors[position].to_dict()})
        for position, item in enumerate(inputs)
    ]


def classify(error: Exception) -> tuple[FailureReason, str]:
    """Why a non-transient failure happened, in the jobs' vocabulary."""
    if isinstance(error, DatasetUnavailableError):
        return FailureReason.INFRASTRUCTURE, error.message
    if isinstance(error, BatchCamError):
        return FailureReason.INVALID_INPUT, error.message
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return FailureReason.OUT_OF_MEMORY, "the GPU ran out of memory; send fewer or smaller images"
    if isinstance(error, ObjectStoreError | ModelArtifactsMissingError | InlineInputsMissingError):
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
