"""Claiming several small queued explanations of one model together (dynamic batching).

Requests that arrive close together for the same model are explained as one batch: one forward and
one gradient pass instead of one per request. The worker whose message names a row claims that row;
if it is small, it also claims the oldest other queued rows of the same model that fit the batch's
image budget, in the same transaction. Each claimed row keeps its own attempt and lease, so leases,
cancellation, retries and the sweep work per request exactly as for a row claimed alone; the other
rows' messages later find them taken and return at once. Rows of one model belong to one tenant, so
a batch never mixes tenants.

A model's wake-up (``worker.explain.wake_gate``: one message per burst) claims the model's oldest
queued row when the named one has ended, and reports whether it left queued rows behind, so that its
worker wakes the model again for them.

Postgres locks the candidates with ``SKIP LOCKED`` (two workers batching at once take disjoint rows);
the claim itself is the usual conditional UPDATE, so on SQLite too no row is claimed twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from persistence import leases
from persistence.explanations.leases import ExplanationClaim
from persistence.models import Explanation
from persistence.states import JobState

# The model's oldest queued rows, locked; built once, bound per claim (ARCHITECTURE §7.3: hot path).
OLDEST_QUEUED = (
    select(Explanation.id, Explanation.image_count)
    .where(Explanation.model_id == bindparam("model"), Explanation.state == JobState.QUEUED)
    .order_by(Explanation.created_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
OLDEST_QUEUED_BESIDES = OLDEST_QUEUED.where(Explanation.id != bindparam("besides"))


@dataclass(frozen=True)
class BatchLimits:
    """How much one batch may take: images in all, and requests (``max_requests`` 1: no batching).

    A request of more than ``max_images`` runs alone, its maps stored in shards as it goes."""

    max_images: int = 256
    max_requests: int = 64


@dataclass(frozen=True)
class ClaimedBatch:
    model_id: uuid.UUID
    claims: list[ExplanationClaim]  # the named row first; one row when it is large or batching is off
    together: bool  # small enough to be explained in one batch (else: alone, its maps stored as it goes)
    # Queued rows of the model may remain that this claim saw and did not take (over the limits, or
    # not looked for: a large row, or batching off).
    leftover: bool
    # What each claimed row asks, returned by the claim itself (no second query): row id → request.
    requests: dict[uuid.UUID, ClaimedRequest]


@dataclass(frozen=True)
class ClaimedRequest:
    request: dict[str, Any]  # method, targets, inputs (Explanation.request)
    inline_inputs: bytes | None  # a small upload's images


# What a claim returns of each row, after its attempt (persistence.leases.claim).
CLAIM_RETURNS = (
    Explanation.tenant_id,
    Explanation.created_at,
    Explanation.request,
    Explanation.inline_inputs,
)


def claim_batch(
    session: Session,
    explanation_id: uuid.UUID,
    owner: str,
    lease_for: timedelta,
    now: datetime,
    limits: BatchLimits,
) -> ClaimedBatch | None:
    """Claim the named row and, if it is small, queued rows of its model up to ``limits``.

    ``None``: the named row is running elsewhere, ended, or absent (nothing else is claimed then)."""
    first = leases.claim(
        session,
        Explanation,
        explanation_id,
        owner,
        lease_for,
        now,
        *CLAIM_RETURNS,
        Explanation.model_id,
        Explanation.image_count,
    )
    if first is None:
        return None
    attempt, tenant_id, created_at, request, inline_inputs, model_id, image_count = tuple(first)
    claims = [ExplanationClaim(explanation_id, tenant_id, owner, attempt, created_at)]
    requests = {explanation_id: ClaimedRequest(dict(request), inline_inputs)}
    if image_count is None or image_count > limits.max_images:
        return ClaimedBatch(model_id, claims, together=False, leftover=True, requests=requests)
    if limits.max_requests == 1:
        return ClaimedBatch(model_id, claims, together=True, leftover=True, requests=requests)
    looked_at = limits.max_requests - 1
    candidates = queued_of_model(session, model_id, explanation_id, looked_at)
    chosen = fitting(candidates, limits.max_images - image_count)
    for row in leases.claim_many(session, Explanation, chosen, owner, lease_for, now, *CLAIM_RETURNS):
        row_id, row_attempt, row_tenant, row_created, row_request, row_inline = tuple(row)
        claims.append(ExplanationClaim(row_id, row_tenant, owner, row_attempt, row_created))
        requests[row_id] = ClaimedRequest(dict(row_request), row_inline)
    leftover = len(candidates) == looked_at or len(chosen) < len(candidates)
    return ClaimedBatch(model_id, claims, together=True, leftover=leftover, requests=requests)


def claim_model_batch(
    session: Session,
    model_id: uuid.UUID,
    owner: str,
    lease_for: timedelta,
    now: datetime,
    limits: BatchLimits,
) -> ClaimedBatch | None:
    """``claim_batch`` from the model's oldest queued row; ``None``: none is queued (or free)."""
    queued = session.execute(OLDEST_QUEUED, {"model": model_id, "limit": 1}).first()
    return None if queued is None else claim_batch(session, queued.id, owner, lease_for, now, limits)


def queued_of_model(
    session: Session, model_id: uuid.UUID, besides: uuid.UUID, limit: int
) -> list[tuple[uuid.UUID, int | None]]:
    """(id, image count) of the model's oldest queued rows, locked (a count unknown: ``None``)."""
    rows = session.execute(
        OLDEST_QUEUED_BESIDES, {"model": model_id, "besides": besides, "limit": limit}
    ).all()
    return [(row_id, count) for row_id, count in rows]


def fitting(candidates: list[tuple[uuid.UUID, int | None]], budget: int) -> list[uuid.UUID]:
    """The oldest candidates whose images fit ``budget`` together (one that does not fit is skipped,
    a smaller later one may still go; one whose count is unknown runs alone)."""
    chosen: list[uuid.UUID] = []
    for row_id, count in candidates:
        if count is not None and count <= budget:
            chosen.append(row_id)
            budget -= count
    return chosen
